"""Clocks fire durably in real processes: within a second of due and once across a
SIGKILL and restart. (Once across replicas and re-runs, and catching up after a long
outage, run on injected time in test_clock_timers.py.)"""
import json
import signal
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import redis

from tests.routerkit import QUICK_PLAN, TOKENS, alert, auth, org_config

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


def events(redis_url: str) -> list[tuple[str, str]]:
    """(kind, incident id) of every event in the stream."""
    r = redis.Redis.from_url(redis_url)
    out = [(fields[b"kind"].decode(), fields[b"incident"].decode()) for _id, fields in r.xrange("hallmon:events")]
    r.close()
    return out


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
    listening = datetime.now(timezone.utc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(k == "overdue" for k, inc in events(redis_url) if inc == inc_id):
            break
        time.sleep(0.2)
    time.sleep(1.5)
    kinds = [k for k, inc in events(redis_url) if inc == inc_id]
    assert second.proc.poll() is None
    req = urllib.request.Request(f"{second.base}/api/v1/incidents/{inc_id}", headers=auth())
    doc = json.loads(urllib.request.urlopen(req, timeout=5).read())
    due = datetime.fromisoformat(next(c for c in doc["clocks"] if c["id"] == "quick-report")["due_at"])
    # the reminder (1 s before due) is sent once; a restart that comes after the due time
    # records it unsent, as the overdue notice says more
    reminders = 1 if listening < due - timedelta(seconds=1) else kinds.count("reminder")
    assert kinds.count("overdue") == 1 and kinds.count("reminder") == reminders <= 1, kinds
    assert [e["action"] for e in doc["timeline"]].count("reminder") == 1  # on record either way
    [fired] = [e for e in doc["timeline"] if e["action"] == "overdue"]
    if listening < due:  # the new process was up in time: it fired within a second of due
        assert (datetime.fromisoformat(fired["at"]) - due).total_seconds() <= 1.0
