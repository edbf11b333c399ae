"""Scheduler at scale: 10,000 net.tcp targets at a 10 s interval against local
listeners (in another process on the other core), one process pinned to one core,
with fault tracking, metrics (rendered every 15 s, as a scrape would) and uvloop.
Prints schedule lag p50/p99/max, checks done, CPU cores used and peak RSS.
Goal (DESIGN.md): lag p99 < 1 s, RSS < 300 MB on one core."""
from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp
import uvloop
from prometheus_client import CollectorRegistry

from bench.common import Listeners, percentile, rss_mb
from monitor.checks.checker import Checker
from monitor.checks.faults import FaultTracker
from monitor.checks.metrics import ReadingSeries, ServiceMetrics
from monitor.checks.scheduler import Scheduler
from monitor.core.target import Target
from probes import PROBES, ProbeContext
from probes.tcp import TcpSpec


class LagRecorder:
    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, v: float) -> None:
        self.values.append(v)


async def run(n: int, interval: str, duration: float, ports: list[int]) -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    lag = LagRecorder()
    metrics.scheduler_lag = lag
    async with aiohttp.ClientSession() as session:
        probes = {k: c(ProbeContext(session)) for k, c in PROBES.items()}
        series = ReadingSeries()
        checker = Checker(probes, FaultTracker(), series, metrics, lambda a: None)
        sched = Scheduler(checker.check, metrics, max_concurrent=1000)
        targets = [Target(spec=TcpSpec.model_validate({"name": f"t{i}", "kind": "net.tcp",
                                                       "address": f"127.0.0.1:{ports[i % len(ports)]}",
                                                       "interval": interval, "timeout": "5s"}),
                          site=f"site{i // 50}", unit=f"unit{i // 1000}", system="network")
                   for i in range(n)]
        cpu0, t0 = os.times(), time.monotonic()
        sched.set_targets(targets)
        renders = []
        while time.monotonic() - t0 < duration:
            await asyncio.sleep(max(0.0, min(15, duration - (time.monotonic() - t0))))
            r0 = time.perf_counter()
            series.render()
            renders.append(time.perf_counter() - r0)
        await sched.stop()
        cpu1, wall = os.times(), time.monotonic() - t0
    used = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
    done = metrics.registry.get_sample_value("hallmon_checks_total", {"kind": "net.tcp", "outcome": "ok"}) or 0
    failed = metrics.registry.get_sample_value("hallmon_checks_total", {"kind": "net.tcp", "outcome": "fail"}) or 0
    skipped = metrics.registry.get_sample_value("hallmon_scheduler_checks_skipped_total") or 0
    print(f"bench/scheduler: {n} net.tcp targets every {interval} for {wall:.0f} s, one core")
    print(f"  checks ok {done:.0f}, failed {failed:.0f}, skipped {skipped:.0f}, rate {(done + failed) / wall:.0f}/s")
    print(f"  lag p50 {percentile(lag.values, 50) * 1000:.1f} ms, p99 {percentile(lag.values, 99) * 1000:.1f} ms, "
          f"max {max(lag.values) * 1000:.1f} ms   (goal: p99 < 1000 ms)")
    print(f"  CPU {used:.3f} cores = {used * wall / max(1, done + failed) * 1000:.3f} ms per check, peak RSS {rss_mb(os.getpid(), peak=True):.0f} MB   (goal: < 300 MB)")
    print(f"  /metrics render (every 15 s) max {max(renders) * 1000 if renders else 0:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--interval", default="10s")
    ap.add_argument("--duration", type=float, default=300)
    args = ap.parse_args()
    listeners = Listeners(n_tcp=8, cpu=1 if os.cpu_count() and os.cpu_count() > 1 else None)
    try:
        os.sched_setaffinity(0, {0})
        uvloop.run(run(args.targets, args.interval, args.duration, listeners.tcp_ports))
    finally:
        listeners.close()


if __name__ == "__main__":
    main()
