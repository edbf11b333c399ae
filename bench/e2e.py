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

    python -m bench.e2e [--trials 3] [--timing tuned|shipped]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from simulators.redisproc import RedisServer
from tests.promkit import AlertmanagerServer, Hall, PrometheusServer

ANCHORS = {"tuned": 1.4, "shipped": 38.0}  # DESIGN.md, Prometheus+Alertmanager fault → webhook, median
FAST_TARGET = 0.7  # DESIGN.md: fast path fault → incident and page, median at a 1 s probe interval
UPS_LINE = "ups: hall-ups, interval: 1s, timeout: 1s}"


async def page_after(hall: Hall, t0: float, timeout: float) -> float:
    while time.monotonic() - t0 < timeout:
        if any(p["kind"] == "page" for p in hall.inbox.pages):
            return time.monotonic() - t0
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no page within {timeout:.0f} s")


async def trial(redis_url: str, via_prometheus: bool, timing: str) -> float:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushall()  # each trial opens its own incident
    edit = (lambda text: text.replace(UPS_LINE, UPS_LINE[:-1] + ", for: 1h}")) if via_prometheus else (lambda t: t)
    with tempfile.TemporaryDirectory(prefix="hallmon-bench-e2e-") as tmp:
        async with Hall(redis_url, Path(tmp), edit=edit) as hall:
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
                t0 = time.monotonic()
                hall.devices.nut.set("hall-ups", ups_status="OB LB DISCHRG", battery_charge="12",
                                     battery_runtime="180", input_voltage="0")
                return await page_after(hall, t0, 200 if timing == "shipped" else 30)
            finally:
                for daemon in (prom, am):
                    if daemon:
                        await asyncio.to_thread(daemon.stop)


async def main(trials: int, timing: str) -> None:
    with RedisServer(appendonly=False) as redis:
        fast, slow = [], []
        for i in range(trials):
            fast.append(await trial(redis.url, False, timing))
            slow.append(await trial(redis.url, True, timing))
            print(f"trial {i + 1}: fast path {fast[-1]:.2f} s, via Prometheus+Alertmanager {slow[-1]:.2f} s", flush=True)
    f, s = statistics.median(fast), statistics.median(slow)
    print(f"\nfault → page, median of {trials} ({timing} Prometheus timings):")
    print(f"  fast path                   {f:6.2f} s   target ≤ {FAST_TARGET} s (incident and page)")
    print(f"  Prometheus + Alertmanager   {s:6.2f} s   anchor {ANCHORS[timing]} s (fault → webhook) "
          f"→ {s / ANCHORS[timing]:.2f}× anchor")
    print(f"  ratio Prometheus path / fast path: {s / f:.1f}×")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--timing", choices=("tuned", "shipped"), default="tuned")
    args = ap.parse_args()
    asyncio.run(main(args.trials, args.timing))
