"""Fault at a simulated device → page received, two ways, in the same run:

* fast path: hallmon's probe (1 s interval) → fault tracker → router → pager → webhook;
* Prometheus path: hallmon's /metrics → Prometheus evaluating alertrules/ →
  Alertmanager (deploy/alertmanager.yml) → hallmon's webhook → router → pager → webhook.
  The probe's own judgement is held back (``for: 1h`` on the UPS target) so that only
  this path can open the incident.

The fault: the hall's UPS goes on battery with 3 minutes left (``OB LB``, runtime 180 s).
Timings of the Prometheus path: ``tuned`` (scrape and evaluation 1 s, group_wait 0,
rules' ``for`` 0: DESIGN's 1.4 s anchor) or ``shipped`` (the files as committed: 15 s
scrape and evaluation, the rule's ``for: 1m``, group_wait 10 s: DESIGN's "as usually
shipped" anchor is 38 s with group_wait 30 s and no ``for``).

Each fast-path trial also prints where its time went, from the service's own log
(``fault_active``: the probe judged the fault; ``incident_opened``; ``page``: the webhook
answered) and the moment the webhook received the page: the first part is the wait for
the next probe (0 to 1 s, a matter of phase), the rest is hallmon's own path.
``--fast-only`` skips the Prometheus path (for alternating runs against another tree:
``cd OTHER && PYTHONPATH=. python /path/to/bench/e2e.py --fast-only``).

    python -m bench.e2e [--trials 3] [--timing tuned|shipped] [--fast-only]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from simulators.redisproc import RedisServer
from tests.promkit import AlertmanagerServer, Hall, PrometheusServer

ANCHORS = {"tuned": 1.4, "shipped": 38.0}  # DESIGN.md, Prometheus+Alertmanager fault → webhook, median
FAST_TARGET = 0.7  # DESIGN.md: fast path fault → incident and page, median at a 1 s probe interval
UPS_LINE = "ups: hall-ups, interval: 1s, timeout: 1s}"


class Stamped(list):
    """The inbox's list of pages, with the wall time each one arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, page: dict) -> None:
        self.at.append(time.time())
        super().append(page)


def stamp_probes(hall: Hall) -> list[float]:
    """The wall times the simulated upsd answered the hall UPS's probe (LIST VAR)."""
    nut, times = hall.devices.nut, []
    answer = nut._answer

    def stamped(words: list[str]) -> str:
        if words[:3] == ["LIST", "VAR", "hall-ups"]:
            times.append(time.time())
        return answer(words)
    nut._answer = stamped  # type: ignore[method-assign]
    return times


class Trace(NamedTuple):
    """Seconds from the fault to each stage (wall clock; the service logs in UTC)."""

    total: float  # the page received at the webhook
    probed: float  # the device answered the first probe that saw the fault
    opened: float | None  # incident_opened: committed with its event
    sent: float | None  # the page's log line: the webhook answered

    @property
    def path(self) -> float:
        """hallmon's own part: the device's answer to the page received."""
        return self.total - self.probed

    def __str__(self) -> str:
        def f(x: float | None) -> str:
            return "   -  " if x is None else f"{x:6.3f}"
        return (f"{f(self.total)} s = next probe {f(self.probed)} + hallmon {f(self.path)} "
                f"(incident {f(self.opened)}, page sent {f(self.sent)})")


def trace(hall: Hall, t0: float, probes: list[float]) -> Trace:
    first: dict[str, float] = {}
    for ev in hall.service.events():
        name = ev.get("event")
        if (name in ("incident_opened", "page") and name not in first and "timestamp" in ev
                and ev.get("kind", "page") == "page"):
            at = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00")).timestamp()
            if at >= t0:
                first[name] = at - t0
    received = next(at for at, p in zip(hall.inbox.pages.at, hall.inbox.pages) if p["kind"] == "page")
    probed = next(at for at in probes if at >= t0)
    return Trace(received - t0, probed - t0, first.get("incident_opened"), first.get("page"))


async def page_after(hall: Hall, t0: float, timeout: float) -> float:
    while time.time() - t0 < timeout:
        if any(p["kind"] == "page" for p in hall.inbox.pages):
            return time.time() - t0
        await asyncio.sleep(0.005)
    raise TimeoutError(f"no page within {timeout:.0f} s")


async def before_probe(probes: list[float], lead: float) -> None:
    """Sleep until ``lead`` seconds before the hall UPS's next probe (1 s grid)."""
    while len(probes) < 2:
        await asyncio.sleep(0.05)
    nxt = probes[-1] + 1.0
    while nxt - lead < time.time() + 0.05:
        nxt += 1.0
    await asyncio.sleep(nxt - lead - time.time())


async def trial(redis_url: str, via_prometheus: bool, timing: str, lead: float | None = None) -> Trace:
    """One fault, one page. ``lead``: the fault comes that long before the UPS's next
    probe (the fast path's phase), or at a random moment when None."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushall()  # each trial opens its own incident
    edit = (lambda text: text.replace(UPS_LINE, UPS_LINE[:-1] + ", for: 1h}")) if via_prometheus else (lambda t: t)
    with tempfile.TemporaryDirectory(prefix="hallmon-bench-e2e-") as tmp:
        async with Hall(redis_url, Path(tmp), edit=edit) as hall:
            hall.inbox.pages = Stamped()
            probes = stamp_probes(hall)
            prom = am = None
            try:
                if via_prometheus:
                    shipped = timing == "shipped"
                    am = await asyncio.to_thread(AlertmanagerServer, hall.base, hall.token, **(
                        {} if shipped else {"group_wait": "0s", "group_interval": "1s"}))
                    prom = await asyncio.to_thread(PrometheusServer, [hall.address], "15s" if shipped else "1s",
                                                   am.address, None if shipped else "0s")
                    await asyncio.sleep(3 if not shipped else 16)  # Prometheus has scraped the healthy state
                else:
                    await asyncio.sleep(2)
                if lead is not None:
                    await before_probe(probes, lead)
                t0 = time.time()
                hall.devices.nut.set("hall-ups", ups_status="OB LB DISCHRG", battery_charge="12",
                                     battery_runtime="180", input_voltage="0")
                await page_after(hall, t0, 200 if timing == "shipped" else 30)
                await asyncio.sleep(0.2)  # the page's log line is written after the webhook answered
                return trace(hall, t0, probes)
            finally:
                for daemon in (prom, am):
                    if daemon:
                        await asyncio.to_thread(daemon.stop)


async def main(trials: int, timing: str, fast_only: bool, lead: float | None) -> None:
    with RedisServer(appendonly=False) as redis:
        fast: list[Trace] = []
        slow: list[float] = []
        for i in range(trials):
            # the fast path's phases spread evenly over the probe interval, so that the
            # median of a few trials is not a draw of where the fault fell
            fast.append(await trial(redis.url, False, timing, (i + 0.5) / trials if lead is None else lead))
            print(f"trial {i + 1}: fast path {fast[-1]}", flush=True)
            if not fast_only:
                slow.append((await trial(redis.url, True, timing)).total)
                print(f"trial {i + 1}: via Prometheus+Alertmanager {slow[-1]:.2f} s", flush=True)
    f = statistics.median(t.total for t in fast)
    paths = [t.path for t in fast]
    print(f"\nfast path, median of {trials}: fault → page {f:.3f} s (target ≤ {FAST_TARGET} s); "
          f"hallmon's part (the device's answer → page received) median {statistics.median(paths) * 1000:.1f} ms, "
          f"max {max(paths) * 1000:.1f} ms")
    if fast_only:
        return
    s = statistics.median(slow)
    print(f"\nfault → page, median of {trials} ({timing} Prometheus timings):")
    print(f"  fast path                   {f:6.2f} s   target ≤ {FAST_TARGET} s (incident and page)")
    print(f"  Prometheus + Alertmanager   {s:6.2f} s   anchor {ANCHORS[timing]} s (fault → webhook) "
          f"→ {s / ANCHORS[timing]:.2f}× anchor")
    print(f"  ratio Prometheus path / fast path: {s / f:.1f}×")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--timing", choices=("tuned", "shipped"), default="tuned")
    ap.add_argument("--fast-only", action="store_true", help="skip the Prometheus path")
    ap.add_argument("--lead", type=float, help="the fault this many seconds before the UPS's next probe "
                    "(default: spread over the interval)")
    args = ap.parse_args()
    asyncio.run(main(args.trials, args.timing, args.fast_only, args.lead))
