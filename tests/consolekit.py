"""A live `hallmon run` for the console tests: one unit per built-in plan (each unit
names its own plan), a hall with a simulated NUT UPS, a port for a unit-limited token,
and personal tokens; plus Debian's chromium driven by Playwright (never a downloaded
browser)."""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from monitor.plans.model import builtin_ids
from simulators.nutserver import NutServer
from tests.conftest import ServiceProcess, write_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TOKENS = {"chief": "chief-token-0123456789", "agency": "agency-token-0123456789",
          "reader": "reader-token-0123456789"}
PLANS = tuple(builtin_ids())


class LoopThread:
    """An asyncio loop in a thread, for simulators a synchronous test drives."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args, **kw) -> None:
        self.loop.call_soon_threadsafe(lambda: fn(*args, **kw))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def config_body(nut_address: str) -> str:
    plan_units = "".join(
        f"    - {{id: u-{p}, name: 测试{p}单位, plan: {p}, sites: [{{id: s-{p}, name: 测试{p}大厅}}]}}\n"
        for p in PLANS)
    return f"""\
plan: shenzhen-customs
api:
  tokens:
    - {{name: chief, secret_env: T_CHIEF, scopes: [alerts:write, incidents:read, incidents:write], person: duty-a}}
    - {{name: agency, secret_env: T_AGENCY, scopes: [incidents:read, incidents:write], units: [port], person: duty-b}}
    - {{name: reader, secret_env: T_READER, scopes: [incidents:read]}}
organisation:
  name: 测试海关
  units:
    - id: hall
      name: 测试一关
      sites:
        - id: hall-1
          name: 测试通关大厅
          targets:
            - {{name: hall-ups, kind: ups.nut, address: "{nut_address}", ups: ups1, interval: 200ms, timeout: 200ms}}
    - id: port
      name: 测试口岸海关
      sites:
        - {{id: port-1, name: 测试口岸查验现场}}
{plan_units}paging:
  people:
    - {{id: duty-a, name: 测试值班长甲, channels: [hook]}}
    - {{id: duty-b, name: 测试值班长乙, channels: [hook]}}
  channels:
    - {{id: hook, type: webhook, url: "http://127.0.0.1:9/unused"}}
  rosters:
    - id: hall-duty
      layers:
        - {{id: duty_chief, members: [duty-a, duty-b], rotation: {{every: 1d, handoff: "08:30", start: 2026-11-02}}}}
"""


class Hall:
    """The running service and its peers."""

    def __init__(self, tmp: Path, redis_url: str, extra: str = "", env: dict | None = None):
        self.loop = LoopThread()
        self.nut = NutServer({"ups1": {"ups.status": "OL", "battery.charge": "100", "battery.runtime": "2400",
                                       "ups.load": "20", "input.voltage": "229"}})
        self.loop.run(self.nut.start())
        cfg = write_config(tmp / "console.yml", config_body(self.nut.address) + extra, redis_url)
        env = {"T_CHIEF": TOKENS["chief"], "T_AGENCY": TOKENS["agency"], "T_READER": TOKENS["reader"], **(env or {})}
        self.svc = ServiceProcess(cfg, env=env)
        self.base = self.svc.wait_listening(timeout=60)  # a loaded CI machine starts slowly
        self.seq = 0

    def ups(self, **values: str) -> None:
        self.loop.call(self.nut.set, "ups1", **values)

    def api(self, method: str, path: str, body=None, token: str = "chief") -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {TOKENS.get(token, token)}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def open_incident(self, site: str, fault: str = "system.down", system: str | None = None) -> dict:
        """An incident through the alerts API (a distinct system each time, so each call
        opens a new incident)."""
        self.seq += 1
        labels = {"alertname": "ConsoleTest", "fault": fault, "site": site, "target": f"t{self.seq}",
                  "system": system or f"sys-{self.seq}"}
        status, out = self.api("POST", "/api/v1/alerts", [{"labels": labels, "annotations": {"summary": "测试告警"},
                                                           "startsAt": datetime.now(timezone.utc).isoformat()}])
        assert status == 200, out
        [incident_id] = out["incidents"]
        return self.api("GET", f"/api/v1/incidents/{incident_id}")[1]

    def wait(self, pred, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    def close(self) -> None:
        self.svc.stop()
        self.loop.run(self.nut.stop())
        self.loop.stop()


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def sign_in(browser, base: str, token: str, **context):
    """A fresh browser tab signed in through the sign-in form; returns the page."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.goto(base + "/console/")
    page.get_by_test_id("token-input").fill(TOKENS.get(token, token))
    page.get_by_test_id("token-input").press("Enter")
    return page


def chromium_present() -> bool:
    return os.path.exists(CHROMIUM)
