"""Levels that change while an incident goes on, through a live ``hallmon run``: a rule on
duration raises the level by a durable timer (Guizhou part 3), across a restart too; the
clocks of the old level are withdrawn, never deleted (Shenzhen 4.3.4); an upgrade after an
acknowledgement pages the new level's policy; a device fault a moment before its site's
uplink fault folds into the uplink's incident."""
from __future__ import annotations

import signal
from datetime import datetime, timedelta, timezone

import pytest

from monitor.plans.model import builtin_ids, load_plan
from tests.plankit import Hall, Receiver, alert, at, clocks, six_units, wait_for

BY = {"by": "测试值班长甲"}
TIME_PLANS = [p for p in builtin_ids() if any(r.when.lasting_at_least for r in load_plan(p).level_rules)]


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)




def now() -> datetime:
    return datetime.now(timezone.utc)


def actions(inc: dict) -> list[str]:
    return [e["action"] for e in inc["timeline"]]


@pytest.mark.parametrize("plan", builtin_ids())
def test_guizhou_part_3_a_level_on_duration_comes_true_by_a_durable_timer(halls, plan):
    hall = halls[plan]
    starts = now().replace(microsecond=0) - timedelta(hours=2) + timedelta(seconds=6)
    inc_id = hall.alerts(alert("queue.down", "u1a", "u1", starts=starts))
    inc = hall.incident(inc_id)
    assert inc["level"] == 3
    if plan not in TIME_PLANS:  # nothing on duration: nothing scheduled, nothing changes
        assert inc["regrade_at"] is None
        return
    assert at(inc["regrade_at"]) == starts + timedelta(hours=2)  # the moment "lasting 2 h" comes true
    assert "continuous-update" in clocks(inc)  # level III: report while handling
    raised = wait_for(lambda: (i := hall.incident(inc_id))["level"] == 2 and i, timeout=30)
    assert raised, hall.incident(inc_id)
    entry = next(e for e in raised["timeline"] if e["action"] == "regraded")
    assert entry["detail"]["upgraded"] == {"from": 3, "to": 2, "rule": "time-span", "source": "Guizhou part 3"}
    assert entry["detail"]["decision"]["facts"]["lasting_seconds"] >= 7200
    assert raised["decision"]["rule"] == "time-span" and raised["regrade_at"] is None
    oral = clocks(raised)["oral-report"]  # the new level's clocks start at the upgrade
    assert oral["anchor"] == "upgraded" and abs((at(oral["due_at"]) - at(entry["at"])).total_seconds()
                                                - 1800) <= 2
    # the hourly update missed at 1 h is one overdue; the next leaves half an hour at least
    # (due at 3 h), so it is withdrawn by the upgrade at 2 h, never overdue a second time
    withdrawn = clocks(raised)["continuous-update"]
    assert withdrawn["status"] == "withdrawn" and at(withdrawn["due_at"]) == starts + timedelta(hours=3)
    assert [e["detail"]["clock"] for e in raised["timeline"] if e["action"] == "overdue"] == ["continuous-update#1"]
    pages = wait_for(lambda: [p for p in halls.receiver.pages(inc_id) if p["incident"]["level"] == 2], timeout=10)
    assert pages, "the upgrade paged nobody"


def test_guizhou_part_3_the_regrade_survives_a_restart(tmp_path, redis_url):
    receiver = Receiver()
    hall = Hall(tmp_path, redis_url, "guizhou-tax", receiver)
    try:
        starts = now().replace(microsecond=0) - timedelta(hours=2) + timedelta(seconds=5)
        inc_id = hall.alerts(alert("system.down", "u1a", "u1", starts=starts))
        hall.svc.signal(signal.SIGKILL)  # no process is running when the moment comes
        hall.svc.proc.wait(10)
        hall.svc.stop()
        wait_for(lambda: now() > starts + timedelta(hours=2, seconds=2), timeout=15)
        hall.start()
        raised = wait_for(lambda: (i := hall.incident(inc_id))["level"] == 2 and i, timeout=20)
        assert raised and actions(raised).count("regraded") == 1
    finally:
        hall.stop()
        receiver.stop()


@pytest.mark.parametrize("plan", builtin_ids())
def test_shenzhen_4_3_4_clocks_of_the_old_level_are_withdrawn_with_the_reason(halls, plan):
    hall = halls[plan]
    system = f"withdraw-{plan}"
    inc_id = hall.alerts(alert("network.down", "u1a", "u1", system=system))
    before = hall.incident(inc_id)
    assert before["level"] == 3
    if plan == "xiamen-tax":  # levels by harm
        hall.post(f"/api/v1/incidents/{inc_id}/flags", {"flags": ["injuries"], "reason": "两人受伤", **BY})
    else:  # the unit's other site: a whole unit
        hall.alerts(alert("network.down", "u1b", "u1", system=system))
    after = hall.incident(inc_id)
    assert after["level"] == 2
    spec = {c.id: c for c in load_plan(plan).clocks}
    kept = clocks(after)
    assert set(clocks(before)) <= set(kept)  # nothing silently deleted
    for cid, clock in kept.items():
        applies = spec[cid.split("#")[0]].applies(2, after["category"])
        assert clock["status"] != "pending" or applies or clock["anchor"] == "resolved", cid
    withdrawn = [cid for cid, c in kept.items() if c["status"] == "withdrawn"]
    assert withdrawn == [cid for cid, c in clocks(before).items() if c["status"] == "pending"
                         and not spec[cid].applies(2, after["category"])]
    if withdrawn:
        entry = next(e for e in after["timeline"] if "clocks_withdrawn" in e["detail"])
        assert entry["detail"]["clocks_withdrawn"]["clocks"] == withdrawn and entry["detail"]["clocks_withdrawn"]["reason"]
    if plan == "shenzhen-customs":
        assert withdrawn == ["monthly-summary"]
    for cid in withdrawn:  # a report for a clock no longer owed is refused, and nothing changes
        status, body = hall.call("POST", f"/api/v1/incidents/{inc_id}/reports/{cid}", BY)
        assert status == 409 and "withdrawn" in body["detail"], body
    assert hall.incident(inc_id)["clocks"] == after["clocks"] and hall.incident(inc_id)["reports"] == after["reports"]
    def counting() -> list[str]:  # the metrics follow the store's notices within moments
        metrics = hall.metrics()
        return [cid for cid in withdrawn if f'clock="{cid}",incident="{inc_id}"' in metrics]
    assert wait_for(lambda: not counting()), counting()  # no longer counting down


LEVEL_POLICIES = """\
            - id: chief-for-level-3
              match: {levels: [3]}
              steps:
                - {notify: {roster: hall-duty, layer: duty_chief}}
            - id: leaders-for-levels-1-2
              match: {levels: [1, 2]}
              steps:
                - {notify: {roster: hall-duty, layer: duty_leader}}
"""


@pytest.mark.parametrize("plan", builtin_ids())
def test_an_upgrade_after_an_acknowledgement_pages_the_new_levels_policy(tmp_path, redis_url, plan):
    receiver = Receiver()
    hall = Hall(tmp_path, redis_url, plan, receiver, policies=LEVEL_POLICIES)
    try:
        system = "ack-then-upgrade"
        inc_id = hall.alerts(alert("system.down", "u1a", "u1", system=system))
        first = wait_for(lambda: receiver.pages(inc_id), timeout=10)
        assert first and {p["recipient"]["id"] for p in first} <= {"duty-a", "duty-b"}  # level 3: the duty chief
        hall.post(f"/api/v1/incidents/{inc_id}/ack", BY)
        if plan == "xiamen-tax":  # levels by harm (3(3)): the router re-grades on the flag
            hall.post(f"/api/v1/incidents/{inc_id}/flags", {"flags": ["injuries"], "reason": "一名群众受伤", **BY})
        else:
            hall.alerts(alert("system.down", "u1b", "u1", system=system))  # a whole unit: level 2
        inc = hall.incident(inc_id)
        assert inc["level"] == 2 and inc["status"] == "open"  # the new level's people acknowledge for themselves
        leaders = wait_for(lambda: [p for p in receiver.pages(inc_id) if p["recipient"]["id"] in ("lead-a", "lead-b")],
                           timeout=10)
        assert leaders and leaders[0]["incident"]["level"] == 2
        upgraded = next(e for e in inc["timeline"] if e["detail"].get("upgraded"))
        assert upgraded["detail"]["reopened"] == {"acknowledged_by": "测试值班长甲"}
        again = hall.post(f"/api/v1/incidents/{inc_id}/ack", {"by": "测试值班领导甲"})
        assert again["status"] == "acknowledged" and again["acknowledged"]["by"] == "测试值班领导甲"
    finally:
        hall.stop()
        receiver.stop()


def test_late_folding_a_device_fault_just_before_its_sites_uplink_fault_joins_it(tmp_path, redis_url):
    receiver = Receiver()
    healthy = redis_url.rsplit(":", 1)[1].split("/")[0]  # something that answers: the probed uplink is fine

    def uplinks(text: str) -> str:
        for site, name in (("u1a", "测试一关甲厅"), ("u2a", "测试二关口岸")):
            text = text.replace(f"{{id: {site}, name: {name}}}",
                                f"{{id: {site}, name: {name}, uplinks: [{site}-router], targets: [{{name: {site}-router, "
                                f"kind: net.tcp, address: '127.0.0.1:{healthy}', system: network, interval: 1h}}]}}")
        return text

    hall = Hall(tmp_path, redis_url, "shenzhen-customs", receiver, org_edit=lambda t: uplinks(six_units(t)))
    try:
        t0 = now().replace(microsecond=0) - timedelta(seconds=20)
        device = alert("queue.down", "u1a", "u1", system="queue", starts=t0, target="u1a-queue")
        dev_id = hall.alerts(device)
        uplink = alert("network.down", "u1a", "u1", system="network", starts=t0 + timedelta(seconds=5),
                       target="u1a-router")
        up_id = hall.alerts(uplink)
        assert up_id != dev_id
        dev, up = hall.incident(dev_id), hall.incident(up_id)
        assert dev["status"] == "resolved" and up_id in dev["resolved"]["result"]  # folded, not left open
        assert dev["timeline"][-1]["action"] == "folded" and dev["timeline"][-1]["detail"]["into"] == up_id
        folded_in = next(e for e in up["timeline"] if e["action"] == "folded_in")
        assert folded_in["detail"]["from"] == dev_id  # recorded on both timelines
        assert "queue.down" in up["faults"] and at(up["detected_at"]) == t0  # as if it had come after the uplink
        assert {a["labels"]["target"] for a in up["alerts"]} == {"u1a-queue", "u1a-router"}
        assert dev["folded_into"] == up_id and up["folded_into"] is None
        # Shenzhen 4.3.4: the monthly summary counts the outage once, under the uplink's incident
        month = at(up["detected_at"]).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m")
        listed = [r["id"] for u in hall.get(f"/api/v1/reports/monthly?month={month}")["units"] for r in u["incidents"]]
        assert up_id in listed and dev_id not in listed
        # the device's recovery, with the labels it fired with, reaches the uplink's incident
        assert hall.post("/api/v1/alerts", [{**device, "endsAt": now().isoformat()}])["incidents"] == [up_id]
        assert next(a for a in hall.incident(up_id)["alerts"] if a["labels"]["target"] == "u1a-queue")["status"] \
            == "resolved"
        # a device fault long before its uplink's (past fold_window) stays an incident of its own
        early = hall.alerts(alert("queue.down", "u2a", "u2", system="queue2", starts=now() - timedelta(seconds=90),
                                  target="u2a-queue"))
        assert hall.alerts(alert("network.down", "u2a", "u2", system="network", target="u2a-router")) == up_id
        assert hall.incident(early)["status"] == "open"
        assert not any(e["action"] == "folded_in" and e["detail"]["from"] == early
                       for e in hall.incident(up_id)["timeline"])
    finally:
        hall.stop()
        receiver.stop()


@pytest.mark.parametrize("plan", builtin_ids())
def test_shenzhen_4_3_4_a_level_reached_again_owes_its_clocks_again(halls, plan):
    """Up from 3 to 2 withdraws the level-3 clocks; a person lowering it back to 3
    (Shenzhen 5.1.2) makes them owed again (the monthly summary must list and file it),
    and withdraws the level-2 ones; a draft's duty log names a department still owed."""
    hall = halls[plan]
    system = f"again-{plan}"
    inc_id = hall.alerts(alert("network.down", "u1a", "u1", system=system))
    first = clocks(hall.incident(inc_id))
    if plan == "xiamen-tax":
        hall.post(f"/api/v1/incidents/{inc_id}/flags", {"flags": ["injuries"], "reason": "两人受伤", **BY})
    else:
        hall.alerts(alert("network.down", "u1b", "u1", system=system))
    raised = hall.incident(inc_id)
    assert raised["level"] == 2
    lowered = hall.post(f"/api/v1/incidents/{inc_id}/level", {"level": 3, "reason": "影响限于本关", **BY})
    assert lowered["level"] == 3
    spec = {c.id: c for c in load_plan(plan).clocks}
    now_clocks = clocks(lowered)
    for cid, clock in now_clocks.items():
        applies = spec[cid.split("#")[0]].applies(3, lowered["category"])
        if clock["anchor"] != "resolved" and "#" not in cid:
            assert (clock["status"] in ("pending", "overdue")) == applies, (cid, clock["status"])
    for cid in first:  # what level 3 asked for at first it asks for again, from now
        if first[cid]["status"] == "pending" and spec[cid].applies(3, lowered["category"]):
            assert now_clocks[cid]["status"] == "pending", cid
    if plan == "shenzhen-customs":
        assert now_clocks["monthly-summary"]["status"] == "pending"
        assert {now_clocks[c]["status"] for c in ("phone-report", "written-report")} == {"withdrawn"}
        month = at(lowered["detected_at"]).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m")
        summary = hall.get(f"/api/v1/reports/monthly?month={month}", accept="application/json")
        row = next(r for u in summary["units"] for r in u["incidents"] if r["id"] == inc_id)
        assert [c["status"] for c in row["clocks"]] == ["pending"]
    # the hand-off report lists what the next shift still owes: no withdrawn clock
    handoff = hall.get("/api/v1/shift-report?roster=hall-duty")
    listed = {c["clock"]: c["status"] for c in handoff["clocks_due"] if c["incident"] == inc_id}
    assert listed == {cid: c["status"] for cid, c in now_clocks.items() if c["status"] in ("pending", "overdue")}
    phone = load_plan(plan).reports.get("phone")
    if phone is not None and phone.duty_log:
        owed = sorted((c for c in lowered["clocks"] if c["status"] in ("pending", "overdue")
                       and c["anchor"] != "resolved"), key=lambda c: c["due_at"])
        _, draft = hall.call("GET", f"/api/v1/incidents/{inc_id}/report?kind=phone", accept="application/json")
        department = next(r["value"] for r in draft["duty_log"] if r["key"] == "their_department")
        assert department == ("、".join(owed[0]["audience"]["to"]) if owed else department)
