"""Upgrade in place (issue 17): each earlier release of tests/previous-releases.txt runs on
a Redis with AOF and leaves state in flight — an incident open with its reports due and an
escalation wait running, an acknowledged one, a resolved one, events paging never read,
an alert request stored but not placed — then stops, and this checkout starts on the
same Redis and config. Every action works on the old incidents, the old wait fires
once, nothing is dead-lettered, and the old records read as they were."""
from __future__ import annotations

import json
import os
import time
import urllib.request
from datetime import datetime

import pytest
import redis

from simulators.redisproc import RedisServer
from tests.plankit import Receiver, alert, cli, wait_for
from tests.routerkit import TOKENS
from tests.upgradekit import Service, config, leave_intake_entry, releases

pytestmark = pytest.mark.slow
RELEASES = releases()


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    return {r.version: r.build(root) for r in RELEASES}


def _dead(url: str) -> dict[str, int]:
    client = redis.Redis.from_url(url)
    try:
        return {key: client.xlen(key) for key in ("hallmon:events:dead", "hallmon:intake:dead") if client.exists(key)}
    finally:
        client.close()


@pytest.mark.parametrize("release", RELEASES, ids=[r.version for r in RELEASES])
def test_an_upgrade_in_place_keeps_every_incident_working(release, trees, tmp_path):
    tree = trees[release.version]
    store = RedisServer(appendonly=True).start()
    receiver = Receiver()
    started: list[Service] = []
    try:
        cfg = config(tmp_path, "hall", store.url, receiver.base, wait="20s")
        quiet = config(tmp_path, "hall-without-paging", store.url, None)
        # ── the old release: an open incident (its wait for the duty leader running), an
        # acknowledged one, a resolved one
        old = Service(cfg, tree)
        started.append(old)
        opened = old.alerts(alert("pos.link_down", "u1a", "u1", system="payment"))
        acked = old.alerts(alert("queue.down", "u2a", "u2", system="queue"))
        resolved = old.alerts(alert("system.down", "u3a", "u3", system="core"))
        old.post(f"/api/v1/incidents/{acked}/ack", {"by": "测试值班长甲"})
        old.post(f"/api/v1/incidents/{resolved}/resolve", {"by": "测试值班长甲", "result": "恢复正常"})
        assert wait_for(lambda: receiver.pages(opened), timeout=30), "the old release paged the duty chief"
        old.stop()
        # ── events paging never read: the old release again, without paging
        old = Service(quiet, tree)
        started.append(old)
        unread = old.alerts(alert("network.down", "u4a", "u4", system="network"))
        old.post(f"/api/v1/incidents/{acked}/level", {"level": 2, "by": "测试值班领导甲", "reason": "扩大"})
        old.stop()
        pending = leave_intake_entry(tree, store.url, [alert("pos.link_down", "u1a", "u1", system="payment",
                                                            target="pos-3"),
                                                      alert("queue.down", "u5a", "u5", system="queue-u5")])
        old_docs = {i: _raw_incident(store.url, i) for i in (opened, acked, resolved, unread)}

        # what a start would change: nothing; what `hallmon migrate` would rewrite
        check = cli("migrate", "--check", "-c", str(cfg), env={**os.environ, **TOKENS})
        assert check.returncode == 0, check.stderr
        assert "incident documents: v1: 4 (4 would be rewritten to v2)" in check.stdout, check.stdout

        # ── this checkout on the same Redis and config
        new = Service(cfg)
        started.append(new)
        listed = {i["id"] for i in new.get("/api/v1/incidents?limit=100")["incidents"]}
        assert {opened, acked, resolved, unread} <= listed
        for inc, was in old_docs.items():  # read as the old release left them
            now = new.incident(inc)
            # (the intake entry left above may have joined its alerts already: sites only grow)
            assert (now["status"], now["level"]) == (was["status"], was["level"]), inc
            assert set(was["sites"]) <= set(now["sites"]), inc
            assert [c["id"] for c in now["clocks"]] == [c["id"] for c in was["clocks"]], inc
            assert now["timeline_intact"] and len(now["timeline"]) >= 1, inc
        # the old wait fires once: the duty leader is paged for the open incident, once;
        # the duty chief's page of the old release is not sent again
        leaders = lambda: [p for p in receiver.pages(opened) if p["recipient"]["id"].startswith("lead-")]
        assert wait_for(leaders, timeout=40), f"the old escalation wait never fired:\n{new.svc.log_path.read_text()[-3000:]}"
        # the opening paging never read is paged, once
        assert wait_for(lambda: receiver.pages(unread), timeout=20)
        time.sleep(2)
        assert len(leaders()) == 1, leaders()
        assert len([p for p in receiver.pages(opened) if p["recipient"]["id"].startswith("duty-")]) == 1
        assert len(receiver.pages(unread)) == 1, receiver.pages(unread)
        if pending is not None:  # the stored request is placed: its alerts join their incidents
            assert wait_for(lambda: new.incident(opened)["alerts_total"] == 2, timeout=20), new.incident(opened)
            assert any("u5a" in i["sites"] for i in new.get("/api/v1/incidents?limit=100")["incidents"])
        # a new alert for the old open incident joins it
        before = new.incident(opened)["alerts_total"]
        assert new.alerts(alert("pos.link_down", "u1a", "u1", system="payment", target="pos-2")) == opened
        assert new.incident(opened)["alerts_total"] == before + 1
        # every action on the old incidents
        for inc in (opened, acked, resolved, unread):
            for kind in ("phone", "written", "final"):
                status, body = new.call("GET", f"/api/v1/incidents/{inc}/report?kind={kind}")
                assert status == 200, (inc, kind, status, body)
        clock = next(c["id"] for c in new.incident(opened)["clocks"] if c["status"] == "pending")
        new.post(f"/api/v1/incidents/{opened}/reports/{clock}", {"by": "测试值班长甲", "note": "已电话报告"})
        new.post(f"/api/v1/incidents/{opened}/ack", {"by": "测试值班长甲"})
        new.post(f"/api/v1/incidents/{opened}/level", {"level": 1, "by": "测试值班领导甲", "reason": "影响扩大"})
        new.post(f"/api/v1/incidents/{opened}/flags", {"flags": ["casualties"], "by": "测试值班领导甲", "reason": "有人员受伤"})
        new.post(f"/api/v1/incidents/{acked}/resolve", {"by": "测试值班长甲", "result": "叫号系统恢复"})
        new.post(f"/api/v1/incidents/{opened}/resolve", {"by": "测试值班长甲", "result": "POS 链路恢复"})
        assert new.incident(acked)["status"] == "resolved"
        month = datetime.fromisoformat(new.incident(resolved)["detected_at"]).strftime("%Y-%m")
        assert new.get(f"/api/v1/reports/monthly?month={month}")
        assert new.get("/api/v1/incidents-open") is not None
        assert new.get("/api/v1/shift-report")
        with urllib.request.urlopen(new.base + "/console/", timeout=10) as resp:
            assert resp.status == 200
        export = new.cli("incidents", "export")
        assert export.returncode == 0, export.stderr
        exported = {json.loads(line)["id"] for line in export.stdout.splitlines() if line.strip()}
        assert {opened, acked, resolved, unread} <= exported
        # the rewrite at rest, beside the running service: idempotent, then all current
        for _ in range(2):
            done = cli("migrate", "-c", str(cfg), env={**os.environ, **TOKENS})
            assert done.returncode == 0, done.stderr
            assert "history: " in done.stdout and "compacted, repacked or re-indexed" in done.stdout, done.stdout
        again = cli("migrate", "--check", "-c", str(cfg), env={**os.environ, **TOKENS}).stdout
        assert "incident documents: v2: " in again and "(all current)" in again.splitlines()[0], again
        assert "stored alerts: v2: " in again, again
        assert new.incident(unread)["sites"] == ["u4a"]
        time.sleep(1)  # the paging loop's last reads
        assert not any(_dead(store.url).values()), _dead(store.url)
        for inc in (opened, acked, resolved, unread):
            assert new.incident(inc)["timeline_intact"], inc
        errors = [e for e in new.svc.events() if e.get("level") == "error"]
        assert not errors, errors
    finally:
        for svc in started:
            svc.stop()
        receiver.stop()
        store.stop()


def _raw_incident(url: str, incident_id: str) -> dict:
    client = redis.Redis.from_url(url)
    try:
        return json.loads(client.get(f"hallmon:incident:{incident_id}"))
    finally:
        client.close()
