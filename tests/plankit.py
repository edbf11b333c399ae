"""Live halls for the plan tests: ``hallmon run`` processes on a private redis-server,
one per plan (reused across a module's tests: every case uses its own ``system`` label,
so its alerts group into an incident of their own), a webhook receiver for pages, and
small synchronous API helpers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from simulators.redisproc import RedisServer
from tests.conftest import ROOT, ServiceProcess
from tests.pagingkit import paging_yaml
from tests.routerkit import TOKENS, org_config

HALLMON = [sys.executable, "-m", "monitor.cli"]
CALENDAR_2027 = """\
calendar:
  years: [2027]
  holidays: [2027-01-01, 2027-02-05, 2027-02-08, 2027-02-09, 2027-02-10, 2027-02-11, 2027-02-12]
  workdays: [2027-02-20]
"""


class Receiver:
    """A webhook page receiver in a thread (the pages a duty officer would get)."""

    def __init__(self) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pages(self, incident: str, kind: str = "page") -> list[dict]:
        return [p for p in self.received if p.get("kind") == kind and p["incident"]["id"] == incident]

    def stop(self) -> None:
        self.server.shutdown()


def six_units(text: str) -> str:
    """The router tests' organisation plus a sixth unit, so that half the units is a case."""
    return text.replace("    - id: hq\n", "    - id: u5\n      name: 测试五关\n      sites: [{id: u5a, name: 测试五关大厅}]\n"
                                           "    - id: hq\n")


class Hall:
    """One ``hallmon run`` with its plan, the router tests' organisation (six units) and paging."""

    def __init__(self, tmp: Path, redis_url: str, plan: str, receiver: Receiver, extra: str = "",
                 org_edit=six_units, wait: str = "1h", policies: str | None = None):
        self.plan = plan
        cfg = tmp / f"{plan}-{uuid.uuid4().hex[:6]}.yml"
        text = org_edit(org_config(redis_url, plan, CALENDAR_2027 + paging_yaml(receiver.base, wait=wait,
                                                                                policies=policies) + extra))
        # the working-day cases replay 2025's and 2026's holidays: alerts as old as those are
        # accepted here (a backfill), where the service's default refuses anything past 30 days
        text = text.replace("  link_secret_env: HALLMON_T_LINK\n",
                            "  link_secret_env: HALLMON_T_LINK\n  alert_max_age: 1000d\n", 1)
        cfg.write_text(text, encoding="utf-8")
        self.config = cfg
        self.start()

    def start(self) -> None:
        """(Re)start the process on the same config and Redis."""
        self.svc = ServiceProcess(self.config, env=TOKENS)
        self.base = self.svc.wait_listening(timeout=60)
        self.env = {**os.environ, **TOKENS, "HALLMON_URL": self.base, "HALLMON_TOKEN": TOKENS["HALLMON_T_ADMIN"]}

    def call(self, method: str, path: str, body: Any = None, token: str = "HALLMON_T_ADMIN",
             raw: bytes | None = None, accept: str = "*/*") -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": accept,
                                              "Authorization": f"Bearer {TOKENS[token]}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
                return resp.status, json.loads(text) if "json" in resp.headers.get("Content-Type", "") else text
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def get(self, path: str, **kw: Any) -> Any:
        status, body = self.call("GET", path, **kw)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        status, out = self.call("POST", path, body, **kw)
        assert status in (200, 201), (path, status, out)
        return out

    def alerts(self, *alerts: dict) -> str:
        """Post alerts; the one incident they make."""
        [incident] = self.post("/api/v1/alerts", list(alerts))["incidents"]
        return incident

    def incident(self, incident_id: str) -> dict:
        return self.get(f"/api/v1/incidents/{incident_id}")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as resp:
            return resp.read().decode()

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of /metrics, or None when the series is absent."""
        want = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        for line in self.metrics().splitlines():
            series, _, value = line.rpartition(" ")
            if series.startswith(name + "{") and "{" + ",".join(sorted(series[len(name) + 1:-1].split(","))) + "}" == want:
                return float(value)
        return None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return cli(*args, env=self.env)

    def stop(self) -> None:
        self.svc.stop()


class Halls:
    """Halls started on demand, one per plan, sharing a private redis-server."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.redis = RedisServer().start()
        self.receiver = Receiver()
        self.halls: dict[str, Hall] = {}
        self._db = 0

    def __getitem__(self, plan: str) -> Hall:
        if plan not in self.halls:
            self._db += 1  # a database of its own: one plan's incidents never meet another's
            url = self.redis.url.rsplit("/", 1)[0] + f"/{self._db}"
            self.halls[plan] = Hall(self.tmp, url, plan, self.receiver)
        return self.halls[plan]

    def close(self) -> None:
        for hall in self.halls.values():
            hall.stop()
        self.receiver.stop()
        self.redis.stop()


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HALLMON, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env or {**os.environ, **TOKENS}, timeout=60)


def alert(fault: str, site: str, unit: str, system: str | None = None, starts: datetime | None = None,
          **labels: str) -> dict:
    """An alert in its own group (``system`` unique unless given)."""
    return {"labels": {"alertname": "HallmonFault", "fault": fault, "site": site, "unit": unit,
                       "system": system or f"sys-{uuid.uuid4().hex[:8]}", "target": f"{site}-dev", **labels},
            "annotations": {"summary": f"{site} {fault}"},
            "startsAt": (starts or datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()}


def clocks(incident: dict) -> dict[str, dict]:
    return {c["id"]: c for c in incident["clocks"]}


def at(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def wait_for(check, timeout: float = 10.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every)
