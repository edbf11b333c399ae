"""Real Prometheus and Alertmanager (Debian's binaries) on loopback, free ports and temp
dirs, killed at exit; and a simulated hall and port watched by a real ``hallmon run``,
for the dashboard and end-to-end tests."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

import aiohttp
import yaml

from monitor.cli.demo import Devices, PageInbox, demo_config
from simulators.core import CoreSystem
from simulators.redisproc import free_port
from tests.conftest import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.args[0]} not ready at {url}:\n{log.read_text()[-3000:]}")


class _Daemon:
    ready_path = "/-/ready"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"hallmon-{type(self).__name__.lower()}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.dir / "log"
        self.proc: subprocess.Popen | None = None

    def _start(self, argv: list[str]) -> None:
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        _wait_ready(self.url + self.ready_path, self.proc, self.log)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class PrometheusServer(_Daemon):
    """Scrapes ``targets`` as job "hallmon" every ``interval``, evaluates the shipped
    alertrules/ as often, and sends alerts to ``alertmanager`` if given. ``rule_for``
    replaces every alert's ``for`` (a copy of the rules; the shipped ones hold for
    minutes, too long for a test)."""

    def __init__(self, targets: list[str], interval: str = "1s", alertmanager: str | None = None,
                 rule_for: str | None = None) -> None:
        super().__init__()
        cfg = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
        cfg["global"].update(scrape_interval=interval, evaluation_interval=interval)
        cfg["rule_files"] = []
        for path in sorted((ROOT / "alertrules").glob("*.rules.yml")):
            if rule_for is not None:
                rules = yaml.safe_load(path.read_text(encoding="utf-8"))
                for group in rules["groups"]:
                    for rule in group["rules"]:
                        if "alert" in rule:
                            rule["for"] = rule_for
                path = self.dir / path.name
                path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
            cfg["rule_files"].append(str(path))
        jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
        jobs["hallmon"].update(scrape_interval=interval, scrape_timeout=interval,
                               static_configs=[{"targets": targets}])
        jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{self.port}"]}]
        if alertmanager:
            cfg["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
        else:
            del cfg["alerting"]
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self._start([PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}",
                     f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"])

    def query(self, expr: str) -> dict:
        """The API's answer (``status``, ``data`` or ``error``), errors included."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return json.loads(err.read())


class AlertmanagerServer(_Daemon):
    """The shipped deploy/alertmanager.yml with hallmon's address and token file put in,
    and timings tuned as given (``group_wait`` etc. override the route's)."""

    def __init__(self, hallmon_base: str, token: str, **timings: str) -> None:
        super().__init__()
        token_file = self.dir / "hallmon-token"
        token_file.write_text(token)
        cfg = yaml.safe_load((ROOT / "deploy" / "alertmanager.yml").read_text())
        cfg["route"].update(timings)
        for recv in cfg["receivers"]:
            for hook in recv.get("webhook_configs", []):
                if recv["name"] == "hallmon":
                    hook["url"] = hook["url"].replace("http://hallmon:9108", hallmon_base)
                    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
                else:  # nowhere to send meta alerts in a test: a closed loopback port
                    hook["url"] = f"http://127.0.0.1:{free_port()}/{recv['name']}"
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(cfg))
        self._start([ALERTMANAGER, f"--config.file={self.dir / 'alertmanager.yml'}",
                     f"--storage.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                     "--cluster.listen-address=", "--log.level=warn"])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class Hall:
    """The demo's simulated hall and port (UPS over NUT, queue, acquirer, core systems,
    an uplink) watched by ``hallmon run`` as a child process, paging a local inbox."""

    def __init__(self, redis_url: str, tmp: Path, extra_targets: tuple[str, ...] = (),
                 edit: Callable[[str], str] = lambda text: text) -> None:
        self.redis_url, self.tmp, self.extra_targets, self.edit = redis_url, tmp, extra_targets, edit
        self.devices, self.inbox = Devices(), PageInbox()
        self.hall, self.port = CoreSystem("H2000"), CoreSystem("H2000-port")
        self.token = "hall-token-0123456789abcdef"
        self.service: ServiceProcess | None = None
        self.listener: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "Hall":
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        for thing in (self.devices, self.inbox, self.hall, self.port):
            await thing.start()
        self.listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        tcp_port = self.listener.sockets[0].getsockname()[1]
        cfg = self.tmp / "hall.yml"
        text = demo_config(self.redis_url, f"127.0.0.1:{free_port()}", self.hall.url, self.port.url, tcp_port,
                           self.inbox.url, self.devices.nut.address, self.devices.queue.url,
                           self.devices.acquirer.address)
        # more targets at the port (flow mappings, one a line), beside its POS link
        anchor = next(line for line in text.splitlines() if "name: demo-port-pos" in line)
        indent = anchor[:len(anchor) - len(anchor.lstrip())]
        text = text.replace(anchor, "\n".join([anchor, *(indent + "- " + t for t in self.extra_targets)]))
        cfg.write_text(self.edit(text), encoding="utf-8")
        env = {"HALLMON_DEMO_TOKEN": self.token, "HALLMON_DEMO_LINK_SECRET": "link-secret-0123456789abcdef0123"}
        self.service = ServiceProcess(cfg, env=env)
        await asyncio.to_thread(self.service.wait_listening)

    async def __aexit__(self, *exc) -> None:
        if self.service:
            await asyncio.to_thread(self.service.stop)
        if self.listener:
            self.listener.close()
        for thing in (self.devices, self.inbox, self.hall, self.port):
            await thing.stop()

    @property
    def base(self) -> str:
        return self.service.base

    @property
    def address(self) -> str:
        return self.base.removeprefix("http://")

    async def incidents(self) -> list[dict]:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"}) as s, \
                s.get(f"{self.base}/api/v1/incidents") as r:
            return (await r.json())["incidents"]
