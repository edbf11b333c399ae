"""Alerts that say when they end (``endsAt`` in the future, Prometheus's way) end then,
as Alertmanager ends them, unless a resend moves the time on (issue 17, item 3):
on injected time across two replicas and every built-in plan, and through real
``hallmon run`` processes, also when the time passes while hallmon is killed."""
from __future__ import annotations

import json
import signal
import time as walltime
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from monitor.core.alert import fingerprint
from monitor.incidents import expiry
from monitor.plans.model import builtin_ids
from monitor.service.ingest import parse_list, parse_webhook
from tests.conftest import ServiceProcess
from tests.plankit import wait_for
from tests.routerkit import TOKENS, FakeTime, alert, auth, config_file, org_config, replica, stream_events

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


@pytest.mark.parametrize("plan", builtin_ids())
async def test_an_alert_ends_at_its_endsat_unless_resent_once_across_replicas(tmp_path, redis_url, plan):
    cfg = config_file(tmp_path, redis_url, plan=plan)
    time = FakeTime()
    a, b = replica(cfg, redis_url, time), replica(cfg, redis_url, time)
    t0 = time.now()
    try:
        sent = alert("system.down", "u3a", "u3", starts=t0 - timedelta(minutes=1), ends=t0 + timedelta(seconds=60))
        [inc_id] = await a.router.ingest(parse_list([sent], now=t0), actor="api")
        fp = fingerprint(sent["labels"])
        assert await a.timers.due_at(expiry.timer_id(fp)) == (t0 + timedelta(seconds=60)).timestamp()

        time.advance(seconds=30)  # the sender holds it: sent again, ending later
        resent = {**sent, "endsAt": (t0 + timedelta(seconds=90)).isoformat()}
        await b.router.ingest(parse_list([resent], now=time.now()), actor="api")
        time.advance(seconds=31)  # past the first endsAt, not the second
        await a.fire_due()
        await b.fire_due()
        inc = await a.router.store.require(inc_id)
        assert inc.recovered is False and [s.status for s in await a.router.store.alerts(inc_id)] == ["firing"]

        time.advance(seconds=30)  # past the second: not sent again, it has ended
        fired = await a.fire_due() + await b.fire_due()
        assert fired >= 1
        inc = await b.router.store.require(inc_id)
        assert inc.recovered is True and inc.status == "open"
        [stored] = await a.router.store.alerts(inc_id)
        assert stored.status == "resolved" and stored.ends_at == t0 + timedelta(seconds=90)
        ended = [e for e in await a.router.store.timeline(inc_id) if e.actor == "expiry"]
        assert len(ended) == 1 and ended[0].detail.get("recovered") is True
        assert [k for k, _ in stream_events(redis_url, inc_id)].count("recovered") == 1
        assert await a.timers.due_at(expiry.timer_id(fp)) is None
        time.advance(hours=1)
        await a.fire_due()
        await b.fire_due()
        assert len([e for e in await a.router.store.timeline(inc_id) if e.actor == "expiry"]) == 1
    finally:
        await a.close()
        await b.close()


async def test_alertmanager_webhook_alerts_without_endsat_get_no_expiry(tmp_path, redis_url):
    """Alertmanager's webhook sends firing alerts with Go's zero time and sends their
    resolution itself: hallmon does not end them on its own."""
    cfg = config_file(tmp_path, redis_url)
    time = FakeTime()
    a = replica(cfg, redis_url, time)
    try:
        sent = {**alert("system.down", "u3a", "u3", starts=time.now()), "status": "firing",
                "endsAt": "0001-01-01T00:00:00Z"}
        [inc_id] = await a.router.ingest(parse_webhook({"version": "4", "alerts": [sent]}, now=time.now()))
        assert await a.timers.due_at(expiry.timer_id(fingerprint(sent["labels"]))) is None
        time.advance(days=2)
        await a.fire_due()
        assert (await a.router.store.require(inc_id)).recovered is False
    finally:
        await a.close()


def post(base: str, alerts: list[dict]) -> str:
    req = urllib.request.Request(base + "/api/v1/alerts", data=json.dumps(alerts).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **auth()})
    with urllib.request.urlopen(req, timeout=30) as resp:
        [incident] = json.loads(resp.read())["incidents"]
        return incident


def get(base: str, incident: str) -> dict:
    req = urllib.request.Request(f"{base}/api/v1/incidents/{incident}", headers=auth())
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_an_endsat_that_passes_while_hallmon_is_killed_ends_the_alert_after_start(tmp_path, redis_url, service):
    cfg = tmp_path / "hall.yml"
    cfg.write_text(org_config(redis_url), encoding="utf-8")
    first = service(cfg, env=TOKENS)
    now = datetime.now(timezone.utc)
    ends = now + timedelta(seconds=2)
    down = post(first.base, [alert("system.down", "u3a", "u3", starts=now - timedelta(minutes=1), ends=ends)])
    assert get(first.base, down)["recovered"] is False
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    while datetime.now(timezone.utc) <= ends:  # the alert's end passes while no hallmon runs
        walltime.sleep(0.1)

    second: ServiceProcess = service(cfg, env=TOKENS)
    assert wait_for(lambda: get(second.base, down)["recovered"], timeout=20), second.log_path.read_text()[-3000:]
    [stored] = get(second.base, down)["alerts"]
    assert stored["status"] == "resolved" and datetime.fromisoformat(stored["endsAt"]) == ends.replace(
        microsecond=ends.microsecond // 1000 * 1000)
    # and while it runs: a short endsAt, never sent again, ends the incident's alert
    soon = post(second.base, [alert("pos.link_down", "u2a", "u2", ends=datetime.now(timezone.utc)
                                    + timedelta(seconds=2))])
    assert wait_for(lambda: get(second.base, soon)["recovered"], timeout=20)
