"""Router ingest: 10,000 alerts of one site outage posted at once (100 requests of 100
alerts, all concurrent) → how many incidents, alerts/s, p99 request latency, Redis
memory per incident; against Redis anchors measured in the same run (pipelined ZADD,
and the Lua claim of due timers that the clocks use).
Targets (DESIGN.md): 1 incident; >= 5,000 alerts/s; p99 < 50 ms."""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from bench.common import percentile
from monitor.durable.timers import Timers
from simulators.redisproc import RedisServer
from tests.routerkit import TOKENS, make_app


async def anchors(url: str, n: int = 100_000) -> tuple[float, float]:
    r = aioredis.from_url(url)
    timers = Timers(r, "bench")
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        pipe = r.pipeline(transaction=False)
        for j in range(i, i + 1000):
            pipe.zadd("bench:due", {f"t{j}": 1.0})
            pipe.hset("bench:data", f"t{j}", "{}")
        await pipe.execute()
    zadd = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    drained = 0
    while True:
        batch = await timers.claim(now=2.0, limit=1000)
        if not batch:
            break
        drained += len(batch)
    claim = drained / (time.perf_counter() - t0)
    await r.delete("bench:due", "bench:data")
    await r.aclose()
    return zadd, claim


async def run(n: int, per_request: int) -> None:
    for k, v in TOKENS.items():
        os.environ[k] = v
    with RedisServer(appendonly=True) as redis, tempfile.TemporaryDirectory() as tmp:
        zadd, claim = await anchors(redis.url)
        app = make_app(Path(tmp), redis.url)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        r = aioredis.from_url(redis.url)
        mem0 = (await r.info("memory"))["used_memory"]
        now = datetime.now(timezone.utc).isoformat()
        alerts = [{"labels": {"alertname": "HallmonFault", "fault": "system.down", "site": "u1a", "unit": "u1",
                              "system": "core", "target": f"counter-{i}"}, "startsAt": now} for i in range(n)]
        latencies: list[float] = []
        headers = {"Authorization": f"Bearer {TOKENS['HALLMON_T_ADMIN']}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def post(chunk: list) -> None:
                t = time.perf_counter()
                async with session.post(f"{base}/api/v1/alerts", json=chunk, headers=headers) as resp:
                    assert resp.status == 200, await resp.text()
                latencies.append(time.perf_counter() - t)
            t0 = time.perf_counter()
            await asyncio.gather(*(post(alerts[i:i + per_request]) for i in range(0, n, per_request)))
            wall = time.perf_counter() - t0
            burst = list(latencies)
            # then a steady 5,000 alerts/s in requests of 10 for 2 s: latency without a queue in front
            latencies.clear()
            steady = [dict(a, labels={**a["labels"], "target": f"steady-{i}"}) for i, a in enumerate(alerts[:10_000])]
            tasks = []
            t1 = time.perf_counter()
            for k in range(0, 10_000, 10):
                delay = t1 + k / 5000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(steady[k:k + 10])))
            await asyncio.gather(*tasks)
            async with session.get(f"{base}/api/v1/incidents", headers=headers) as resp:
                incidents = (await resp.json())["incidents"]
        mem = (await r.info("memory"))["used_memory"] - mem0
        await r.aclose()
        await runner.cleanup()
    print(f"bench/router: {n} alerts of one site outage, {n // per_request} concurrent requests of {per_request}")
    print(f"  incidents opened        {len(incidents)}  (goal: 1); alerts stored {incidents[0]['alerts_total']}"
          f" (burst + steady)")
    print(f"  ingest                  {n / wall:8.0f} alerts/s  (goal >= 5,000)")
    print(f"  burst request latency   p50 {percentile(burst, 50) * 1000:.1f} ms, "
          f"p99 {percentile(burst, 99) * 1000:.1f} ms  (all 100 requests queue on one incident)")
    print(f"  steady 5,000 alerts/s   p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms per request of 10  (goal p99 < 50 ms)")
    print(f"  Redis memory            {mem / 1024:.0f} KiB for the incident, "
          f"{mem / incidents[0]['alerts_total']:.0f} B per alert")
    print(f"  anchors (same Redis)    pipelined ZADD {zadd:8.0f}/s, Lua claim of due timers {claim:8.0f}/s")
    print(f"  ratio ingest/ZADD       {n / wall / zadd:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--per-request", type=int, default=100)
    args = ap.parse_args()
    asyncio.run(run(args.alerts, args.per_request))


if __name__ == "__main__":
    main()
