"""CPU per probe: hallmon against prometheus-blackbox-exporter, probing the same local
TCP and HTTP targets at the same rate, in the same run.

blackbox is driven the way Prometheus drives it (one /probe request per probe); only
the exporter's own CPU is counted. hallmon runs as `hallmon run` with N targets at an
interval giving the same rate, so scheduling, fault tracking and metrics are included
(and /metrics is scraped every 5 s). HTTP probes open a new connection each time on
both sides. Prints CPU ms per probe and the ratio hallmon/blackbox.
Targets (DESIGN.md): TCP <= 0.35x, HTTP <= 0.5x."""
from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import Listeners, cpu_seconds, wait_http
from simulators.redisproc import RedisServer, free_port

BLACKBOX_CONFIG = """\
modules:
  tcp_connect: {prober: tcp, timeout: 5s}
  http_2xx: {prober: http, timeout: 5s, http: {preferred_ip_protocol: ip4}}
"""


async def drive_blackbox(base: str, module: str, target: str, rate: int, seconds: float) -> int:
    done = 0
    async with aiohttp.ClientSession() as session:
        async def one() -> None:
            nonlocal done
            async with session.get(f"{base}/probe", params={"module": module, "target": target}) as r:
                body = await r.text()
                if "probe_success 1" in body:
                    done += 1
        tasks = []
        t0 = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return done


def blackbox_cost(binary: str, module: str, target: str, rate: int, seconds: float, tmp: Path) -> float:
    cfg = tmp / "blackbox.yml"
    cfg.write_text(BLACKBOX_CONFIG)
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics")
        base = f"http://127.0.0.1:{port}"
        asyncio.run(drive_blackbox(base, module, target, rate, 2))  # warm-up
        c0 = cpu_seconds(proc.pid)
        ok = asyncio.run(drive_blackbox(base, module, target, rate, seconds))
        used = cpu_seconds(proc.pid) - c0
    finally:
        proc.kill()
        proc.wait()
    if ok < rate * seconds * 0.95:
        raise RuntimeError(f"blackbox: only {ok} probes succeeded")
    return used / ok


def checks_total(metrics: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("hallmon_checks_total{"))


def hallmon_cost(kind: str, address: str, rate: int, seconds: float, redis_url: str, tmp: Path) -> float:
    n, interval = rate, "1s"
    field = f'url: "http://{address}/"' if kind == "system.http" else f'address: "{address}"'
    targets = "".join(f"            - {{name: t{i}, kind: {kind}, {field}, interval: {interval}, timeout: 1s}}\n"
                      for i in range(n))
    listen = f"127.0.0.1:{free_port()}"
    cfg = tmp / f"hallmon-{kind}.yml"
    cfg.write_text(f"""\
service: {{listen: "{listen}", redis_url: "{redis_url}"}}
organisation:
  name: bench
  units:
    - id: u
      name: U
      sites:
        - id: s
          name: S
          targets:
{targets}""")
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-format", "json", "run", "-c", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://{listen}"

    async def window() -> tuple[float, float]:
        async with aiohttp.ClientSession() as session:
            async def scrape() -> str:
                async with session.get(f"{base}/metrics") as r:
                    return await r.text()
            await asyncio.sleep(3)  # warm-up: every target checked at least twice
            c0, n0 = cpu_seconds(proc.pid), checks_total(await scrape())
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(5)
                await scrape()
            return cpu_seconds(proc.pid) - c0, checks_total(await scrape()) - n0

    try:
        wait_http(f"{base}/healthz")
        used, checks = asyncio.run(window())
    finally:
        proc.terminate()
        proc.wait()
    return used / checks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=200, help="probes per second")
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    binary = shutil.which("prometheus-blackbox-exporter")
    if not binary:
        sys.exit("prometheus-blackbox-exporter not found: run scripts/setup.sh test")
    listeners = Listeners(n_tcp=1, cpu=1)
    tcp = f"127.0.0.1:{listeners.tcp_ports[0]}"
    http = f"127.0.0.1:{listeners.http_port}"
    try:
        with tempfile.TemporaryDirectory() as d, RedisServer(appendonly=False) as redis:
            tmp = Path(d)
            rows = []
            for label, module, kind, target, addr in (("TCP", "tcp_connect", "net.tcp", tcp, tcp),
                                                      ("HTTP", "http_2xx", "system.http", f"http://{http}/", http)):
                bb = blackbox_cost(binary, module, target, args.rate, args.seconds, tmp)
                hm = hallmon_cost(kind, addr, args.rate, args.seconds, redis.url, tmp)
                rows.append((label, hm, bb))
    finally:
        listeners.close()
    print(f"bench/probe_cost: {args.rate} probes/s for {args.seconds:.0f} s each, CPU per probe")
    for label, hm, bb in rows:
        goal = "0.35" if label == "TCP" else "0.5"
        print(f"  {label:<5} hallmon {hm * 1000:6.3f} ms   blackbox_exporter {bb * 1000:6.3f} ms   "
              f"ratio {hm / bb:5.2f}x  (goal <= {goal}x)")


if __name__ == "__main__":
    main()
