"""History that does not grow (issue 17, item 5): a province of 200 sites, incidents
opened and resolved over three years, measured at each size against issue 17's table.

The history is written in bulk through the store's own write path (``Router.ingest``,
``resolve``, ``file_report`` on a fake clock: the same transactions the API runs, not
HTTP); every report owed after resolution is filed, as a duty officer does. Then, at
each checkpoint, a real ``hallmon run`` is started on that Redis and measured through its
live API: restart to ready, the closed search for one site (every page of
``GET /api/v1/incidents?status=resolved&site=…``), a month's summary, the open list (50
incidents kept open throughout), the process's RSS, and Redis's memory per resolved
incident (INFO used_memory over the history, and MEMORY USAGE of one incident's keys).

Anchor (issue 17's table, hallmon 0.6 on this machine): at 1,000 resolved incidents
21.4 KB of Redis each, RSS 245 MB, closed search 0.56 s, monthly summary 0.71 s, open
list 76 ms; at 5,000: 20.7 KB, 982 MB, 3.6 s, 4.4 s, 596 ms.

    python -m bench.history [--counts 1000,5000,50000,200000] [--searches 20]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from bench.common import percentile, rss_mb
from monitor.config.model import load_config
from monitor.core.alert import Alert
from monitor.incidents import actions, lifecycle
from monitor.incidents.classify import group
from simulators.redisproc import RedisServer, free_port
from tests.routerkit import TOKENS, FakeTime, replica

ANCHOR = {1000: (21.4, 245, 0.56, 0.71, 0.076), 5000: (20.7, 982, 3.6, 4.4, 0.596)}
UNITS, SITES_PER_UNIT, OPEN = 20, 10, 50
YEARS = 3
FAULTS = [("system.down", "core"), ("power.on_battery", "power"), ("pos.link_down", "payment"),
          ("queue.down", "queue"), ("network.down", "network")]
ROOT = Path(__file__).resolve().parent.parent


def config_text(redis_url: str, listen: str) -> str:
    units = []
    for u in range(UNITS):
        sites = ", ".join(f"{{id: s{u:02d}{s}, name: 测试站点{u:02d}{s}}}" for s in range(SITES_PER_UNIT))
        units.append(f"    - {{id: u{u:02d}, name: 测试单位{u:02d}, sites: [{sites}]}}")
    return (f'service: {{listen: "{listen}", redis_url: "{redis_url}", timezone: Asia/Shanghai}}\n'
            "plan: shenzhen-customs\n"
            "api:\n  link_secret_env: HALLMON_T_LINK\n  tokens:\n"
            "    - {name: ops, secret_env: HALLMON_T_ADMIN, scopes: [alerts:write, incidents:read, incidents:write]}\n"
            "organisation:\n  name: 测试省局\n  units:\n" + "\n".join(units) + "\n")


def sites() -> list[tuple[str, str]]:
    return [(f"s{u:02d}{s}", f"u{u:02d}") for u in range(UNITS) for s in range(SITES_PER_UNIT)]


async def write(rep, start: datetime, first: int, last: int, total: int, rng: random.Random,
                batch: int = 100) -> None:
    """Incidents ``first``..``last`` of ``total`` spread evenly over the three years after
    ``start``: each opened, resolved 10-120 minutes later and its owed reports filed, by
    the lifecycle's own functions, written by the store's own ``_write`` (document,
    timeline entry, alerts, indexes, timers, events) with a MULTI per ``batch`` incidents
    instead of one per change: the same stored form, without a round trip per change."""
    span = timedelta(days=365 * YEARS).total_seconds()
    all_sites = sites()
    store, view, now = rep.router.store, rep.router.view(), rep.time.now()
    by = "测试值班长甲"
    for lo in range(first, last, batch):
        async with rep.client.pipeline(transaction=True) as pipe:
            for i in range(lo, min(last, lo + batch)):
                at = start + timedelta(seconds=span * i / total)
                site, unit = rng.choice(all_sites)
                name, system = rng.choice(FAULTS)
                alert = Alert(labels={"alertname": "HallmonFault", "fault": name, "site": site, "unit": unit,
                                      "system": f"{system}-{i}", "target": f"{site}-{system}"},
                              starts_at=at, annotations={"summary": f"{site} {name}"}, source="api")
                [(key, items)] = group([alert], view).items()
                day = at.astimezone(view.timezone).strftime("%Y%m%d")
                inc, change = lifecycle.open_incident(f"INC-{day}-{i:06d}", key, items, now, view)
                inc = await store._write(pipe, inc, change)
                done = at + timedelta(minutes=rng.uniform(10, 120))
                after, change = actions.resolve(inc, by, "已恢复", done, now, view)
                inc = await store._write(pipe, after, change, inc)
                for clock in inc.clocks:
                    if clock.owed:
                        after, change = actions.file_report(inc, clock.id, by, None, "已报送", now)
                        inc = await store._write(pipe, after, change, inc)
            await pipe.execute()
            store._plans_written.add(inc.frozen_plan.digest)  # as create and update do after a commit


async def timed_get(session: aiohttp.ClientSession, url: str, **params) -> tuple[float, dict]:
    t0 = time.perf_counter()
    async with session.get(url, params=params) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    return time.perf_counter() - t0, body


async def search_site(session, base: str, site: str) -> tuple[float, int]:
    """Every page of one site's closed incidents: (seconds, incidents)."""
    t0, n, offset = time.perf_counter(), 0, 0
    while offset is not None:
        _, body = await timed_get(session, f"{base}/api/v1/incidents", status="resolved", site=site,
                                  limit="1000", offset=str(offset))
        n += len(body["incidents"])
        offset = body["next_offset"]
    return time.perf_counter() - t0, n


def start_service(config: Path) -> tuple[subprocess.Popen, float, str]:
    """``hallmon run``: (process, seconds from exec to /readyz 200, base URL)."""
    import json
    import urllib.request

    log = open(config.with_suffix(".log"), "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-format", "json", "run", "-c", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **TOKENS})
    base = None
    while True:
        if proc.poll() is not None:
            raise RuntimeError(config.with_suffix(".log").read_text())
        if base is None:
            for line in config.with_suffix(".log").read_text().splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "listening":
                    base = f"http://{ev['address']}"
        if base is not None:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return proc, time.perf_counter() - t0, base
            except OSError:
                pass
        time.sleep(0.02)


async def redis_memory(r: aioredis.Redis) -> int:
    return int((await r.info("memory"))["used_memory"])


async def one_incident_bytes(r: aioredis.Redis, inc_id: str) -> int:
    keys = [f"hallmon:incident:{inc_id}", f"hallmon:incident:{inc_id}:alerts", f"hallmon:timeline:{inc_id}"]
    return sum([await r.memory_usage(k) or 0 for k in keys])


async def main(counts: list[int], searches: int) -> None:
    os.environ.update(TOKENS)
    rng = random.Random(17)
    total = max(counts)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=365 * YEARS + 1)  # every resolution (up to 2 h after) in the past
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as server:
        config = Path(tmp) / "province.yml"
        config.write_text(config_text(server.url, f"127.0.0.1:{free_port()}"), encoding="utf-8")
        cfg = load_config(config)
        rep = replica(cfg, server.url, FakeTime(now))
        r = aioredis.from_url(server.url, decode_responses=True)
        # the open ones, first: they stay open through the whole history
        for i in range(OPEN):
            site, unit = sites()[i * 4]
            await rep.router.ingest([Alert(labels={"alertname": "HallmonFault", "fault": "system.down", "site": site,
                                                   "unit": unit, "system": f"open-{i}", "target": f"{site}-core"},
                                           starts_at=now - timedelta(minutes=30), source="api")])
        base_memory = await redis_memory(r)
        print(f"{'resolved':>9} | {'Redis/incident':>14} | {'one incident':>12} | {'RSS':>7} | "
              f"{'site search p95':>15} | {'month':>7} | {'open list':>9} | {'ready':>6} | write/s")
        written = 0
        for count in counts:
            t0 = time.perf_counter()
            rep.time.t = now
            await write(rep, start, written, count, total, rng)
            rate = (count - written) / (time.perf_counter() - t0)
            written = count
            # consumed in a real service (nobody reads it here), and claims expire after a day
            await r.delete("hallmon:events", *await r.keys("hallmon:claim:*"))
            per = (await redis_memory(r) - base_memory) / count
            sample = (await r.zrange("hallmon:idx:status:resolved", -1, -1))[0]
            proc, ready, base = start_service(config)
            try:
                async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}"}) as s:
                    times = []
                    for site, _ in rng.sample(sites(), searches):
                        took, _n = await search_site(s, base, site)
                        times.append(took)
                    month_at = start + timedelta(days=365 * YEARS * written / total / 2)
                    month = month_at.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m")
                    month_s, summary = await timed_get(s, f"{base}/api/v1/reports/monthly", month=month)
                    opens = []
                    for _ in range(10):
                        took, body = await timed_get(s, f"{base}/api/v1/incidents-open")
                        opens.append(took)
                    assert len(body["incidents"]) == OPEN
                rss = rss_mb(proc.pid)
            finally:
                proc.terminate()
                proc.wait()
            p95 = percentile(times, 95)
            anchor = ANCHOR.get(count)
            vs = (f"  [0.6: {anchor[0]} KB, {anchor[1]} MB, {anchor[2]} s, {anchor[3]} s, {anchor[4] * 1000:.0f} ms; "
                  f"search {p95 / anchor[2]:.3f}×, month {month_s / anchor[3]:.3f}×]") if anchor else ""
            print(f"{count:>9,} | {per / 1024:>11.2f} KB | {await one_incident_bytes(r, sample) / 1024:>9.2f} KB | "
                  f"{rss:>4.0f} MB | {p95 * 1000:>12.1f} ms | {month_s:>5.2f} s | "
                  f"{percentile(opens, 50) * 1000:>6.1f} ms | {ready:>4.2f} s | {rate:>5.0f}{vs}", flush=True)
            print(f"{'':>9}   month {month}: {summary['total']} level-3 incidents listed", flush=True)
        await rep.close()
        await r.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="1000,5000,50000,200000",
                    help="checkpoints: resolved incidents written before each measurement")
    ap.add_argument("--searches", type=int, default=20, help="sites searched per checkpoint (p95 over them)")
    args = ap.parse_args()
    asyncio.run(main(sorted(int(c) for c in args.counts.split(",")), args.searches))
