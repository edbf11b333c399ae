"""Shared fixtures: a private redis-server per test session (never the machine's
6379), config files written to tmp_path, and the service run as a real process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import structlog

from monitor.core.logs import console_renderer
from simulators.redisproc import RedisServer, free_port
from tests.routerkit import TOKENS

# apps run inside the test process log through structlog's defaults: keep them, with plain
# tracebacks (rich, when installed, renders every frame's locals: seconds per crash)
structlog.configure(processors=[*structlog.get_config()["processors"][:-1], console_renderer(colors=False)])

ROOT = Path(__file__).resolve().parent.parent
HALLMON = [sys.executable, "-m", "monitor.cli"]


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    """A clean database on the session's private redis-server."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


def write_config(path: Path, body: str, redis_url: str = "redis://127.0.0.1:1/0",
                 listen: str | None = None) -> Path:
    """A config file: ``body`` is the organisation section (and anything after it)."""
    listen = listen or f"127.0.0.1:{free_port()}"
    text = (f'service: {{listen: "{listen}", redis_url: "{redis_url}", timezone: Asia/Shanghai}}\n'
            + textwrap.dedent(body))
    path.write_text(text, encoding="utf-8")
    return path


class ServiceProcess:
    """``hallmon run`` as a child process, with its log captured."""

    def __init__(self, config: Path, *extra: str, env: dict | None = None, preexec_fn=None,
                 command: list[str] | None = None, cwd: Path = ROOT):
        """``command`` and ``cwd``: another release's ``hallmon`` (tests/upgradekit.py)."""
        self.config = config
        self.log_path = config.with_suffix(".log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*(command or HALLMON), "--log-format", "json", "run", "-c", str(config), *extra],
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd,
                                     env={**os.environ, **(env or {})}, preexec_fn=preexec_fn)
        self.base = None

    def wait_listening(self, timeout: float = 60) -> str:
        import json

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text().splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "listening":
                    self.base = f"http://{ev['address']}"
                    return self.base
            if self.proc.poll() is not None:
                raise RuntimeError(f"hallmon exited {self.proc.returncode}:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        # never leave it running: a process that started late would go on consuming the
        # intake stream of the session's Redis, placing later tests' alerts with its plan
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"hallmon did not start:\n{self.log_path.read_text()}")

    def events(self) -> list[dict]:
        import json

        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def service(tmp_path):
    """Start ``hallmon run`` on a config; stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def start(config: Path, *extra: str, env: dict | None = None, preexec_fn=None) -> ServiceProcess:
        svc = ServiceProcess(config, *extra, env=env, preexec_fn=preexec_fn)
        started.append(svc)
        svc.wait_listening()
        return svc

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
async def checker():
    """A Checker with every probe kind, its alerts collected in ``checker.alerts``."""
    import aiohttp
    from prometheus_client import CollectorRegistry

    from monitor.checks.checker import Checker
    from monitor.checks.faults import FaultTracker
    from monitor.checks.metrics import ReadingSeries, ServiceMetrics
    from probes import PROBES, ProbeContext

    alerts = []
    async with aiohttp.ClientSession() as session:
        probes = {k: c(ProbeContext(session)) for k, c in PROBES.items()}
        ch = Checker(probes, FaultTracker(), ReadingSeries(), ServiceMetrics(CollectorRegistry()), alerts.append)
        ch.alerts = alerts
        yield ch
        for probe in probes.values():
            await probe.close()


@pytest.fixture
def tokens(monkeypatch):
    """The API tokens' secrets the test configs name (tests.routerkit.TOKENS), in the
    environment; a module asks for it with ``pytestmark = pytest.mark.usefixtures("tokens")``."""
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="module")
def halls(tmp_path_factory):
    """One ``hallmon run`` per built-in plan, started on first use, for the module's tests."""
    from tests.plankit import Halls  # here, not at the top: plankit imports this module's ServiceProcess

    h = Halls(tmp_path_factory.mktemp("halls"))
    yield h
    h.close()



@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module that asks for it (tests/consolekit.py: Debian's
    chromium, --no-sandbox as root)."""
    from playwright.sync_api import sync_playwright  # test extra: imported where the browser is used

    from tests.consolekit import launch

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
