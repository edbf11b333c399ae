"""Device probes' cost: ups.nut (many UPSes on one real upsd) and pos.iso8583 (against the
acquirer simulator in another process) as checks per CPU-second of the prober; net.icmp
against 127.0.0.1 vs prometheus-blackbox-exporter's icmp module at the same rate (CPU
per probe and the ratio)."""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry

from bench.common import cpu_seconds, wait_http
from monitor.checks.checker import Checker
from monitor.checks.faults import FaultTracker
from monitor.checks.metrics import ReadingSeries, ServiceMetrics
from monitor.core.target import Target
from probes import PROBES, ProbeContext
from simulators import upsd as upsd_sim
from simulators.redisproc import free_port

ACQUIRER = """
import asyncio, sys
from simulators.acquirer import Acquirer
async def main():
    a = await Acquirer().start()
    print(a.port, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def checks_per_cpu_second(targets: list[Target], seconds: float, rate: float) -> tuple[float, int, int]:
    async with aiohttp.ClientSession() as session:
        probes = {k: c(ProbeContext(session)) for k, c in PROBES.items()}
        checker = Checker(probes, FaultTracker(), ReadingSeries(), ServiceMetrics(CollectorRegistry()),
                          lambda a: None)
        done = failed = 0
        c0, t0 = time.process_time(), time.monotonic()
        i = 0
        tasks = []
        while time.monotonic() - t0 < seconds:
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(checker.check(targets[i % len(targets)])))
            i += 1
        readings = await asyncio.gather(*tasks)
        cpu = time.process_time() - c0
        for p in probes.values():
            await p.close()
    done = sum(1 for r in readings if r.ok)
    failed = len(readings) - done
    return done / cpu, done, failed


def make(kind: str, name: str, **spec) -> Target:
    cls = PROBES[kind]
    return Target(spec=cls.spec.model_validate({"name": name, "kind": kind, **spec}), site="s", unit="u",
                  system=cls.system)


async def icmp_blackbox(rate: int, seconds: float) -> float | None:
    binary = shutil.which("prometheus-blackbox-exporter")
    if not binary:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "bb.yml"
        cfg.write_text("modules:\n  icmp: {prober: icmp, timeout: 2s}\n")
        port = free_port()
        proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics")
            async with aiohttp.ClientSession() as s:
                async def one():
                    async with s.get(f"http://127.0.0.1:{port}/probe",
                                     params={"module": "icmp", "target": "127.0.0.1"}) as r:
                        return "probe_success 1" in await r.text()
                c0 = cpu_seconds(proc.pid)
                t0 = time.monotonic()
                tasks = []
                for i in range(int(rate * seconds)):
                    delay = t0 + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one()))
                ok = sum(await asyncio.gather(*tasks))
                return (cpu_seconds(proc.pid) - c0) / max(1, ok)
        finally:
            proc.kill()
            proc.wait()


async def main_async(seconds: float) -> None:
    rows = []
    if upsd_sim.available():
        upses = {f"ups{i}": {"ups.status": "OL", "battery.charge": "100", "battery.runtime": "1800"} for i in range(20)}
        with upsd_sim.Upsd(upses) as u:
            targets = [make("ups.nut", f"t{i}", address=u.address, ups=f"ups{i}") for i in range(20)]
            # one shared connection per upsd (the rule) is serial, and upsd answers a LIST
            # VAR in ~42 ms here (its reply comes in many small writes: Nagle against delayed ACK),
            # so one upsd connection tops out near 24 checks/s; 20/s is 20 UPSes every second
            per_cpu, ok, bad = await checks_per_cpu_second(targets, seconds, rate=20)
            rows.append(f"  ups.nut      20 UPSes on one upsd, 20 checks/s: {per_cpu:8.0f} checks per CPU-second "
                        f"({ok} ok, {bad} failed)")
    acq = subprocess.Popen([sys.executable, "-c", ACQUIRER], stdout=subprocess.PIPE, text=True,
                           cwd=Path(__file__).resolve().parent.parent)
    try:
        port = int(acq.stdout.readline())
        targets = [make("pos.iso8583", f"p{i}", address=f"127.0.0.1:{port}") for i in range(20)]
        per_cpu, ok, bad = await checks_per_cpu_second(targets, seconds, rate=200)
        rows.append(f"  pos.iso8583  echo against the acquirer simulator, 200/s: {per_cpu:8.0f} checks per CPU-second "
                    f"({ok} ok, {bad} failed)")
    finally:
        acq.kill()
        acq.wait()
    targets = [make("net.icmp", f"i{i}", address="127.0.0.1", count=1) for i in range(10)]
    per_cpu, ok, bad = await checks_per_cpu_second(targets, seconds, rate=50)
    bb = await icmp_blackbox(50, seconds)
    ours = 1 / per_cpu
    line = f"  net.icmp     127.0.0.1, 50/s: hallmon {ours * 1000:.3f} ms CPU per probe"
    if bb:
        line += f", blackbox_exporter icmp {bb * 1000:.3f} ms: ratio {ours / bb:.2f}x"
    rows.append(line + f" ({ok} ok, {bad} failed)")
    print(f"bench/probe_cost_devices ({seconds:.0f} s each):")
    print("\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    asyncio.run(main_async(args.seconds))


if __name__ == "__main__":
    main()
