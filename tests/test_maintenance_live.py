"""Maintenance windows (Putian art. 3) through a live ``hallmon run``: announced, listed and
ended through the API and the CLI, kept with who and why; bad announcements are 400 and
store nothing; a unit-limited token reaches only its units; the config's windows are
listed but end only with the config. Pages are held per alert and per moment: they go
out when the window ends (or is ended), or when a site outside it joins."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from monitor.plans.model import builtin_ids
from tests.plankit import Hall, Receiver, alert, wait_for

BY = {"by": "测试值班长甲"}
CONFIG_WINDOW = ("{id: u4a, name: 测试四关大厅}",
                 "{id: u4a, name: 测试四关大厅, maintenance: [{from: '2026-01-01T00:00:00+08:00', "
                 "to: '2036-01-01T00:00:00+08:00', reason: 机房改造}]}")


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


@pytest.fixture
def hall(tmp_path, redis_url):
    receiver = Receiver()
    h = Hall(tmp_path, redis_url, "putian-tax", receiver, org_edit=lambda text: text.replace(*CONFIG_WINDOW))
    h.receiver = receiver
    yield h
    h.stop()
    receiver.stop()


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def test_putian_art_3_windows_announced_listed_and_ended_with_who_and_why(hall):
    now = datetime.now(timezone.utc)
    window = {"sites": ["u1a"], "from": iso(now - timedelta(minutes=1)), "to": iso(now + timedelta(hours=2)),
              "reason": "UPS 更换电池", **BY}
    bad = [
        {**window, "sites": []}, {**window, "sites": ["nowhere"]}, {**window, "units": ["u1"]},
        {k: v for k, v in window.items() if k != "sites"}, {**window, "to": window["from"]},
        {**window, "to": iso(now - timedelta(seconds=1)), "from": iso(now - timedelta(hours=1))},
        {**window, "to": iso(now + timedelta(days=40))}, {**window, "from": "yesterday"},
        {**window, "to": "2026-12-01T08:00:00"}, {**window, "reason": ""}, {**window, "by": 5},
        {**window, "color": "red"}, {**window, "from": "0001-01-01T00:00:00+00:00"}, [window],
    ]
    for body in bad:
        status, out = hall.call("POST", "/api/v1/maintenance", body)
        assert status == 400 and out["error"] == "bad_request", (body, out)
    assert [w["source"] for w in hall.get("/api/v1/maintenance?all=true")["windows"]] == ["config"]  # nothing stored

    made = hall.post("/api/v1/maintenance", window)
    assert made["id"].startswith("MW-") and made["by"] == "测试值班长甲" and made["reason"] == "UPS 更换电池"
    listed = {w["id"]: w for w in hall.get("/api/v1/maintenance")["windows"]}
    assert listed[made["id"]]["active"] and listed["config:u4a:0"]["reason"] == "机房改造"

    # a unit-limited token sees and changes its units' windows only
    assert hall.call("POST", "/api/v1/maintenance", window, token="HALLMON_T_PORT")[0] == 403
    assert [w["id"] for w in hall.get("/api/v1/maintenance", token="HALLMON_T_PORT")["windows"]] == []
    assert hall.call("DELETE", f"/api/v1/maintenance/{made['id']}?by=x", token="HALLMON_T_PORT")[0] == 403
    assert hall.call("DELETE", f"/api/v1/maintenance/{made['id']}", token="HALLMON_T_READ")[0] == 403
    assert hall.call("DELETE", "/api/v1/maintenance/MW-nope?by=x")[0] == 404
    assert hall.call("DELETE", "/api/v1/maintenance/config:u4a:0?by=x")[0] == 409
    assert hall.call("DELETE", f"/api/v1/maintenance/{made['id']}")[0] == 400  # who ended it

    ended = hall.call("DELETE", f"/api/v1/maintenance/{made['id']}?by={quote('测试值班长乙')}")[1]
    assert ended["ended_by"] == "测试值班长乙" and datetime.fromisoformat(ended["to"]) <= datetime.now(timezone.utc)
    assert made["id"] not in {w["id"] for w in hall.get("/api/v1/maintenance")["windows"]}
    kept = {w["id"]: w for w in hall.get("/api/v1/maintenance?all=true")["windows"]}
    assert kept[made["id"]]["reason"] == "UPS 更换电池" and kept[made["id"]]["ended_by"] == "测试值班长乙"


def test_putian_art_3_the_maintenance_command(hall):
    res = hall.cli("maintenance", "add", "--units", "u1", "--for", "2h", "--reason", "网络割接", "--by", "测试值班长甲")
    assert res.returncode == 0, res.stderr
    window_id = res.stdout.split()[0]
    assert window_id.startswith("MW-") and "u1" in res.stdout and "网络割接" in res.stdout
    listed = hall.cli("maintenance", "list")
    assert window_id in listed.stdout and "config:u4a:0" in listed.stdout
    bad = hall.cli("maintenance", "add", "--units", "nowhere", "--for", "2h", "--reason", "x", "--by", "y")
    assert bad.returncode == 1 and "no such unit" in bad.stderr
    res = hall.cli("maintenance", "end", window_id, "--by", "测试值班长乙")
    assert res.returncode == 0 and "ended by 测试值班长乙" in res.stdout
    assert window_id not in hall.cli("maintenance", "list").stdout
    assert window_id in hall.cli("maintenance", "list", "--all").stdout


# ── pages held per alert and per moment ─────────────────────────────────────────

def test_putian_art_3_pages_resume_when_the_window_ends(hall):
    receiver = hall.receiver
    ends = datetime.now(timezone.utc) + timedelta(seconds=6)
    hall.post("/api/v1/maintenance", {"sites": ["u1a"], "from": iso(ends - timedelta(hours=1)), "to": iso(ends),
                                      "reason": "配电柜检修", **BY})
    inc_id = hall.alerts(alert("power.on_battery", "u1a", "u1"))
    inc = hall.incident(inc_id)
    assert inc["maintenance"] is True and datetime.fromisoformat(inc["held_until"]) == ends.replace(microsecond=0)
    time.sleep(1.5)
    assert receiver.pages(inc_id) == []  # recorded, not paged
    unheld = wait_for(lambda: receiver.pages(inc_id), timeout=20)
    assert unheld and unheld[0]["incident"]["maintenance"] is False  # the window ended with the fault still on
    inc = hall.incident(inc_id)
    entry = next(e for e in inc["timeline"] if e["action"] == "maintenance")
    assert entry["detail"]["maintenance"]["held"] is False and inc["held_until"] is None


def test_putian_art_3_a_site_outside_the_window_joining_pages(hall):
    receiver = hall.receiver
    now = datetime.now(timezone.utc)
    hall.post("/api/v1/maintenance", {"units": ["u2"], "from": iso(now - timedelta(minutes=5)),
                                      "to": iso(now + timedelta(hours=3)), "reason": "网络割接", **BY})
    inc_id = hall.alerts(alert("network.down", "u2a", "u2", system="core-net"))
    assert hall.incident(inc_id)["maintenance"] is True
    time.sleep(1.5)
    assert receiver.pages(inc_id) == []
    assert hall.alerts(alert("network.down", "u3a", "u3", system="core-net")) == inc_id  # outside any window
    inc = hall.incident(inc_id)
    assert inc["maintenance"] is False and inc["level"] == 2
    assert wait_for(lambda: receiver.pages(inc_id), timeout=10)


def test_putian_art_3_ending_a_window_early_pages_what_it_held(hall):
    receiver = hall.receiver
    now = datetime.now(timezone.utc)
    window = hall.post("/api/v1/maintenance", {"sites": ["u3a"], "from": iso(now), "to": iso(now + timedelta(hours=1)),
                                               "reason": "系统升级", **BY})
    inc_id = hall.alerts(alert("system.down", "u3a", "u3"))
    held_config = hall.alerts(alert("power.on_battery", "u4a", "u4"))  # the config's window, until 2036
    time.sleep(1.5)
    assert receiver.pages(inc_id) == [] and receiver.pages(held_config) == []
    res = hall.cli("maintenance", "end", window["id"], "--by", "测试值班长乙")
    assert res.returncode == 0, res.stderr
    assert wait_for(lambda: receiver.pages(inc_id), timeout=10)
    assert hall.incident(inc_id)["maintenance"] is False
    assert hall.incident(held_config)["maintenance"] is True and receiver.pages(held_config) == []


def test_putian_art_3_a_window_announced_after_the_fault_holds_what_comes_next(hall):
    receiver = hall.receiver
    inc_id = hall.alerts(alert("queue.down", "u1b", "u1"))
    assert wait_for(lambda: receiver.pages(inc_id), timeout=10)  # paged: no window yet
    now = datetime.now(timezone.utc)
    hall.post("/api/v1/maintenance", {"sites": ["u1b"], "from": iso(now), "to": iso(now + timedelta(hours=1)),
                                      "reason": "叫号机更换", **BY})
    inc = hall.incident(inc_id)
    assert inc["maintenance"] is True and any(e["action"] == "maintenance" for e in inc["timeline"])


@pytest.mark.parametrize("plan", builtin_ids())
def test_putian_art_3_clocks_are_held_with_the_pages_and_resume_when_the_window_ends(tmp_path, redis_url, plan):
    """A planned outage pages nobody, reminders and overdue reports included: what falls
    due inside the window waits for its end; then the policy pages, and each report
    missed is overdue once (no reminder for a time already past)."""
    receiver = Receiver()
    hall = Hall(tmp_path, redis_url, plan, receiver)
    try:
        now = datetime.now(timezone.utc)
        ends = (now + timedelta(seconds=8)).replace(microsecond=0)
        hall.post("/api/v1/maintenance", {"units": ["u1"], "from": iso(now - timedelta(hours=2)), "to": iso(ends),
                                          "reason": "计划停电", **BY})
        inc_id = hall.alerts(*(alert("power.on_battery", site, "u1", system="mains", starts=now - timedelta(minutes=90))
                               for site in ("u1a", "u1b")))
        opened = hall.incident(inc_id)
        late = {c["id"] for c in opened["clocks"] if c["status"] == "pending" and datetime.fromisoformat(c["due_at"]) < now}
        assert opened["maintenance"] is True and late, opened["clocks"]
        time.sleep(1.5)
        held = hall.incident(inc_id)
        assert {c["id"] for c in held["clocks"] if c["status"] == "overdue"} == set()  # held, not overdue
        assert [p["kind"] for p in receiver.received if p["incident"]["id"] == inc_id] == []
        pages = wait_for(lambda: receiver.pages(inc_id), timeout=20)
        assert pages and pages[0]["incident"]["maintenance"] is False
        overdue = wait_for(lambda: len(receiver.pages(inc_id, "overdue")) >= len(late) and receiver.pages(inc_id, "overdue"),
                           timeout=10) or []
        assert sorted(p["title"] for p in overdue) == sorted({p["title"] for p in overdue})  # once each
        inc = hall.incident(inc_id)
        fired = [e for e in inc["timeline"] if e["action"] == "overdue"]
        assert {e["detail"]["clock"].split("#")[0] for e in fired} == late and len(fired) == len(late)
        assert all(datetime.fromisoformat(e["at"]) >= ends for e in fired)  # at the window's end, not before
        assert receiver.pages(inc_id, "reminder") == []  # its time had passed
    finally:
        hall.stop()
        receiver.stop()


def test_putian_art_3_an_announced_window_survives_a_restart_and_holds_after_it(hall):
    now = datetime.now(timezone.utc)
    made = hall.post("/api/v1/maintenance", {"sites": ["u2a"], "from": iso(now - timedelta(minutes=1)),
                                             "to": iso(now + timedelta(hours=1)), "reason": "网络割接", **BY})
    hall.stop()
    hall.start()  # a new process on the same Redis: the window is stored there, not in memory
    listed = {w["id"]: w for w in hall.get("/api/v1/maintenance")["windows"]}
    assert listed[made["id"]]["by"] == "测试值班长甲" and listed[made["id"]]["reason"] == "网络割接"
    inc_id = hall.alerts(alert("network.down", "u2a", "u2"))
    assert hall.incident(inc_id)["maintenance"] is True
