"""Helpers shared by the benchmarks: process CPU time, local listeners in a child
process (so their CPU is not counted against the prober), percentiles."""
from __future__ import annotations

import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (from /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int, peak: bool = False) -> float:
    key = "VmHWM" if peak else "VmRSS"
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


_LISTENERS = r"""
import asyncio, sys, os
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
from aiohttp import web

async def main(n_tcp):
    ports = []
    for _ in range(n_tcp):
        srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, backlog=4096)
        ports.append(srv.sockets[0].getsockname()[1])
    async def ok(request):
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    http_port = runner.addresses[0][1]
    print(" ".join(map(str, ports)), http_port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1])))
"""


class Listeners:
    """``n`` TCP listeners and one HTTP server in a child process pinned to ``cpu``."""

    def __init__(self, n_tcp: int = 1, cpu: int | None = None):
        self.proc = subprocess.Popen([sys.executable, "-c", _LISTENERS, str(n_tcp)], stdout=subprocess.PIPE,
                                     text=True)
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(self.proc.pid, {cpu})
        *tcp, http = self.proc.stdout.readline().split()
        self.tcp_ports = [int(p) for p in tcp]
        self.http_port = int(http)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def wait_http(url: str, timeout: float = 10) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")
