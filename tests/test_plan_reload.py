"""Plan files reload on SIGHUP, through a live ``hallmon run`` (issue 17, item 4).

The config names plan files (``plan:`` and one unit's own ``plan:``), each built on a
built-in plan (``base:``) with a report clock of its own. Editing both files and sending
SIGHUP: the next incidents get the edited clocks, an incident opened before keeps the
plan frozen into it (also when a new alert joins it after the reload). An edited plan
that does not validate refuses the whole reload: logged with the plan file's
``file:line``, counted as ``hallmon_config_reloads_total{outcome="refused"}``, and the
running plans stay (the next incident still gets the last good clock). Run once per
built-in plan as the files' base.
"""
from __future__ import annotations

import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.plans.model import builtin_ids
from tests.plankit import Hall, Receiver, alert, at, clocks, six_units, wait_for


def plan_file(path: Path, base: str, plan_id: str, due: str) -> Path:
    path.write_text(f"""\
base: {base}
id: {plan_id}
name: {{zh: 测试本地预案, en: Local test plan}}
clocks:
  - id: local-report
    title: {{zh: 本地报告, en: Local report}}
    from: detected
    due: {due}
    source: test plan (not an emergency plan)
""", encoding="utf-8")
    return path


def due_minutes(incident: dict) -> float:
    clock = clocks(incident)["local-report"]
    return (at(clock["due_at"]) - at(incident["detected_at"])).total_seconds() / 60


def events(hall: Hall, name: str) -> list[dict]:
    return [e for e in hall.svc.events() if e.get("event") == name]


def reload(hall: Hall, outcome: str) -> None:
    """SIGHUP, and wait until the reload is through (applied or refused)."""
    event = {"applied": "reload_applied", "refused": "reload_refused"}[outcome]
    before = len(events(hall, event))
    hall.svc.signal(signal.SIGHUP)
    assert wait_for(lambda: len(events(hall, event)) > before, timeout=15), hall.svc.log_path.read_text()[-3000:]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.mark.parametrize("base", builtin_ids())
def test_edited_plan_files_apply_to_new_incidents_on_sighup_frozen_ones_keep_theirs(tmp_path, redis_url, receiver,
                                                                                    base):
    org = plan_file(tmp_path / "org-plan.yml", base, "local-org", "30m")
    port = plan_file(tmp_path / "port-plan.yml", base, "local-port", "40m")

    def unit_plan(text: str) -> str:  # unit u2 (the port) on a plan file of its own
        return six_units(text).replace("      name: 测试二关\n", f"      name: 测试二关\n      plan: {port}\n", 1)

    hall = Hall(tmp_path, redis_url, str(org), receiver, org_edit=unit_plan)
    try:
        starts = datetime.now(timezone.utc) - timedelta(minutes=1)
        before_org = hall.alerts(alert("pos.link_down", "u1a", "u1", system="pay-before", starts=starts))
        before_port = hall.alerts(alert("pos.link_down", "u2a", "u2", system="port-before", starts=starts))
        assert due_minutes(hall.incident(before_org)) == 30
        assert due_minutes(hall.incident(before_port)) == 40
        assert hall.incident(before_port)["plan"] == "local-port"

        plan_file(org, base, "local-org", "45m")
        plan_file(port, base, "local-port", "50m")
        reload(hall, "applied")
        assert events(hall, "reload_applied")[-1]["plans_changed"] == sorted([str(org), str(port)])
        after_org = hall.alerts(alert("pos.link_down", "u1a", "u1", system="pay-after"))
        after_port = hall.alerts(alert("pos.link_down", "u2a", "u2", system="port-after"))
        assert due_minutes(hall.incident(after_org)) == 45
        assert due_minutes(hall.incident(after_port)) == 50
        # in flight: the frozen copy, also when news of the incident arrives after the reload
        joined = hall.alerts(alert("pos.link_down", "u1b", "u1", system="pay-before", starts=starts))
        assert joined == before_org
        assert due_minutes(hall.incident(before_org)) == 30
        assert due_minutes(hall.incident(before_port)) == 40
        assert hall.incident(before_org)["sites"] == ["u1a", "u1b"]

        # an invalid edit: the whole reload refused, with the plan file's line; the last good plans run on
        org.write_text(org.read_text().replace("due: 45m", "due: soon"), encoding="utf-8")
        plan_file(port, base, "local-port", "55m")  # valid, but part of the refused reload
        refused_before = hall.metric("hallmon_config_reloads_total", outcome="refused") or 0.0
        reload(hall, "refused")
        issues = [e["issue"] for e in events(hall, "reload_refused")]
        assert any(f"{org}:8: clocks[0].due" in i for i in issues), issues
        assert hall.metric("hallmon_config_reloads_total", outcome="refused") == refused_before + 1
        still_org = hall.alerts(alert("pos.link_down", "u1a", "u1", system="pay-refused"))
        still_port = hall.alerts(alert("pos.link_down", "u2a", "u2", system="port-refused"))
        assert due_minutes(hall.incident(still_org)) == 45
        assert due_minutes(hall.incident(still_port)) == 50
    finally:
        hall.stop()
