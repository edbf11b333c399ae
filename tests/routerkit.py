"""An in-process hallmon app against the test session's redis-server, for router tests."""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from monitor.checks.metrics import ServiceMetrics
from monitor.config.model import Config, load_config
from monitor.durable.timers import Timers
from monitor.incidents.router import Router
from monitor.incidents.store import IncidentStore
from monitor.service.app import build_app
from monitor.service.runtime import Runtime
from simulators.redisproc import free_port

TOKENS = {"HALLMON_T_ADMIN": "admin-token-0123456789", "HALLMON_T_PORT": "port-token-0123456789",
          "HALLMON_T_READ": "read-token-0123456789", "HALLMON_T_LINK": "link-secret-0123456789abcdef"}


def clock_plan(plan_id: str = "quick-test", due: str = "3s", reminder_before: str = "1s",
               clock: str = "quick-report") -> str:
    """A test plan on the default one whose one report clock is due ``due`` after
    detection, reminded ``reminder_before`` before it."""
    return f"""\
base: default
id: {plan_id}
name: {{zh: 测试预案 {plan_id}, en: Test plan {plan_id}}}
reminder_before: {reminder_before}
clocks:
  - id: {clock}
    title: {{zh: 测试报告, en: Test report}}
    due: {due}
    source: test plan (not an emergency plan)
"""


# one report due 3 s after detection, reminded 1 s before: clock tests in seconds
QUICK_PLAN = clock_plan()


def org_config(redis_url: str, plan: str = "shenzhen-customs", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        service: {{listen: "127.0.0.1:{free_port()}", redis_url: "{redis_url}", timezone: Asia/Shanghai}}
        plan: {plan}
        api:
          link_secret_env: HALLMON_T_LINK
          tokens:
            - {{name: ops, secret_env: HALLMON_T_ADMIN, scopes: [alerts:write, incidents:read, incidents:write]}}
            - {{name: port-agency, secret_env: HALLMON_T_PORT, scopes: [alerts:write, incidents:read, incidents:write], units: [u2]}}
            - {{name: viewer, secret_env: HALLMON_T_READ, scopes: [incidents:read]}}
        organisation:
          name: 测试海关
          units:
            - id: u1
              name: 测试一关
              sites:
                - {{id: u1a, name: 测试一关甲厅}}
                - {{id: u1b, name: 测试一关乙厅}}
            - id: u2
              name: 测试二关
              sites: [{{id: u2a, name: 测试二关口岸}}]
            - id: u3
              name: 测试三关
              sites: [{{id: u3a, name: 测试三关大厅}}]
            - id: u4
              name: 测试四关
              sites: [{{id: u4a, name: 测试四关大厅}}]
            - id: hq
              name: 测试总关
              head_office: true
              sites: [{{id: hqa, name: 测试总关机关}}]
        """) + extra


def make_app(tmp_path: Path, redis_url: str, plan: str = "shenzhen-customs", extra: str = "",
             units_edit=lambda text: text):
    path = tmp_path / "hall.yml"
    path.write_text(units_edit(org_config(redis_url, plan, extra)))
    registry = CollectorRegistry()
    runtime = Runtime(config=load_config(path), path=str(path), metrics=ServiceMetrics(registry))
    return build_app(runtime, registry)


def alert(fault: str, site: str, unit: str, starts: datetime | None = None, ends: datetime | None = None,
          target: str | None = None, **labels: str) -> dict:
    system = {"network": "network", "system": "core", "power": "power", "pos": "payment",
              "queue": "queue"}.get(fault.split(".")[0], "other")
    out = {"labels": {"alertname": "HallmonFault", "fault": fault, "site": site, "unit": unit, "system": system,
                      "target": target or f"{site}-dev", **labels},
           "annotations": {"summary": f"{site} {fault}"},
           "startsAt": (starts or datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()}
    if ends:
        out["endsAt"] = ends.isoformat()
    return out


def auth(env: str = "HALLMON_T_ADMIN") -> dict:
    return {"Authorization": f"Bearer {TOKENS[env]}"}


class FakeTime:
    """A TimeSource the test moves by hand: clocks and reminders without real sleeps."""

    def __init__(self, start: datetime | None = None):
        self.t = start or datetime.now(timezone.utc).replace(microsecond=0)

    def now(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> datetime:
        self.t += timedelta(**delta)
        return self.t


@dataclass
class Replica:
    """One router (as one hallmon process has) on the test's Redis, on fake time."""

    router: Router
    timers: Timers
    client: aioredis.Redis
    time: FakeTime

    async def fire_due(self) -> int:
        """Handle every clock timer due at the fake now, as the timers loop would."""
        fired = 0
        while batch := await self.timers.claim(now=self.time.now().timestamp()):
            for timer_id, payload in batch:
                await self.router.clock_timer(timer_id, payload, self.timers)
                fired += 1
        return fired

    async def close(self) -> None:
        await self.client.aclose()


def config_file(tmp_path: Path, redis_url: str, plan: str = "shenzhen-customs", extra: str = "") -> Config:
    path = tmp_path / "hall.yml"
    path.write_text(org_config(redis_url, plan, extra), encoding="utf-8")
    return load_config(path)


def replica(cfg: Config, redis_url: str, time: FakeTime) -> Replica:
    client = aioredis.from_url(redis_url, decode_responses=True)
    timers = Timers(client, "hallmon:clocktimers", lease=2.0)
    return Replica(Router(IncidentStore(client, timers, time=time), lambda: cfg, time=time), timers, client, time)


def stream_events(redis_url: str, incident_id: str | None = None) -> list[tuple[str, dict]]:
    """(kind, body) of every incident event, optionally of one incident."""
    r = redis.Redis.from_url(redis_url)
    out = []
    for _id, fields in r.xrange("hallmon:events"):
        body = json.loads(fields[b"body"])
        if incident_id is None or fields[b"incident"].decode() == incident_id:
            out.append((fields[b"kind"].decode(), body))
    r.close()
    return out
