"""Clocks fire durably: within a second of due, once across two replicas, and once
across a SIGKILL and restart."""
import asyncio
import json
import signal
import time
import urllib.request
from datetime import datetime, timezone

import pytest
import redis

from tests.routerkit import TOKENS, alert, auth, make_app, org_config

QUICK_PLAN = """\
base: default
id: quick-test
name: {zh: 测试快速预案, en: Quick test plan}
reminder_before: 1s
clocks:
  - id: quick-report
    title: {zh: 快速报告, en: Quick report}
    due: 3s
    source: test plan (not an emergency plan)
"""


@pytest.fixture(autouse=True)
def tokens(monkeypatch):
    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)


def events(redis_url: str) -> list[tuple[str, str]]:
    """(kind, incident id) of every event in the stream."""
    r = redis.Redis.from_url(redis_url)
    out = [(fields[b"kind"].decode(), fields[b"incident"].decode()) for _id, fields in r.xrange("hallmon:events")]
    r.close()
    return out


async def test_due_clock_fires_within_a_second_and_once_across_two_replicas(aiohttp_client, tmp_path, redis_url):
    plan = tmp_path / "quick.yml"
    plan.write_text(QUICK_PLAN)
    a = await aiohttp_client(make_app(tmp_path, redis_url, plan=str(plan)))
    (tmp_path / "b").mkdir()
    b = await aiohttp_client(make_app(tmp_path / "b", redis_url, plan=str(plan)))
    resp = await a.post("/api/v1/alerts", json=[alert("power.on_battery", "u3a", "u3",
                                                      starts=datetime.now(timezone.utc))], headers=auth())
    [inc_id] = (await resp.json())["incidents"]
    doc = await (await b.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json()
    due = datetime.fromisoformat(next(c for c in doc["clocks"] if c["id"] == "quick-report")["due_at"])
    await asyncio.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()) + 1.2)
    doc = await (await b.get(f"/api/v1/incidents/{inc_id}", headers=auth())).json()
    clock = next(c for c in doc["clocks"] if c["id"] == "quick-report")
    assert clock["status"] == "overdue"
    fired = [e for e in doc["timeline"] if e["action"] == "overdue"]
    assert len(fired) == 1
    assert (datetime.fromisoformat(fired[0]["at"]) - due).total_seconds() < 1.0
    kinds = [k for k, inc in events(redis_url) if inc == inc_id]
    assert kinds.count("reminder") == 1 and kinds.count("overdue") == 1
    # filing late still records the report, marked late
    resp = await a.post(f"/api/v1/incidents/{inc_id}/reports/quick-report", json={"by": "测试值班长甲"},
                        headers=auth())
    clock = next(c for c in (await resp.json())["clocks"] if c["id"] == "quick-report")
    assert clock["status"] == "met" and clock["filed"]["late"] is True


def test_sigkill_and_restart_loses_no_clock_and_fires_none_twice(tmp_path, redis_url, service):
    plan = tmp_path / "quick.yml"
    plan.write_text(QUICK_PLAN.replace("due: 3s", "due: 4s"))
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url, plan=str(plan)))
    env = dict(TOKENS)
    first = service(cfg, env=env)
    body = json.dumps([alert("power.on_battery", "u3a", "u3", starts=datetime.now(timezone.utc))]).encode()
    req = urllib.request.Request(first.base + "/api/v1/alerts", data=body, method="POST",
                                 headers={**auth(), "Content-Type": "application/json"})
    inc_id = json.loads(urllib.request.urlopen(req, timeout=5).read())["incidents"][0]
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(5)
    second = service(cfg, env=env)  # a new process, the same Redis
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(k == "overdue" for k, inc in events(redis_url) if inc == inc_id):
            break
        time.sleep(0.2)
    time.sleep(1.5)
    kinds = [k for k, inc in events(redis_url) if inc == inc_id]
    assert kinds.count("overdue") == 1 and kinds.count("reminder") == 1, kinds
    assert second.proc.poll() is None
