"""Every stored form carries a version and every older form reads (issue 17): the
readers, form by form, on the shapes 0.5 and 0.6 wrote (tests/test_upgrade.py runs the
releases themselves)."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from monitor.durable import versions
from monitor.durable.events import IncidentEvent
from monitor.incidents.records import FrozenPlan, Incident, StoredAlert
from monitor.paging.state import PagingState
from monitor.plans.model import Plan, builtin_ids, load_plan, stored_plan

INCIDENT_05 = {"id": "INC-20261125-0001", "status": "open", "level": 3, "level_name": "三级",
               "plan": "shenzhen-customs", "category": "pos", "system": "payment", "sites": ["u1a"], "units": ["u1"],
               "detected_at": "2026-11-25T09:00:00+08:00", "faults": ["pos.link_down"],
               "clocks": [{"id": "phone-report", "title": "电话报告", "due_at": "2026-11-25T09:15:00+08:00",
                           "status": "pending", "seq": 1, "audience": {"to": ["单位领导"]}}]}


def _as_05(plan: Plan) -> dict:
    """A plan as 0.5 froze it: durations as numbers of seconds."""
    data = plan.model_dump(mode="python", by_alias=True)
    return json.loads(json.dumps(data, default=str))


@pytest.mark.parametrize("plan_id", builtin_ids())
def test_a_plan_frozen_by_0_5_reads_with_its_durations_as_numbers(plan_id):
    plan = load_plan(plan_id)
    frozen = _as_05(plan)
    assert isinstance(frozen["reminder_before"], float)
    with pytest.raises(ValidationError):  # what 0.6 did: refused, and every draft answered 500
        Plan.model_validate(frozen)
    assert stored_plan(frozen) == plan


def test_a_frozen_plan_with_keys_this_release_does_not_know_drops_them_but_a_config_refuses_them():
    data = {**load_plan("xiamen-tax").model_dump(mode="json", by_alias=True), "a_later_field": {"x": 1}}
    assert stored_plan(data).id == "xiamen-tax"
    with pytest.raises(ValidationError, match="a_later_field"):
        Plan.model_validate(data)


def test_a_frozen_plan_that_cannot_validate_stands_in_with_its_builtin_never_an_error():
    data = load_plan("guizhou-tax").model_dump(mode="json", by_alias=True)
    data["levels"] = data["levels"][:1]  # a rule this release refuses
    assert stored_plan(data) == load_plan("guizhou-tax")
    assert FrozenPlan({**data, "id": "a-plan-file-gone"}).plan == load_plan("default")


def test_an_event_0_5_left_unread_reads_as_todays():
    body = {"incident": INCIDENT_05, "clock": INCIDENT_05["clocks"][0], "extra": {"by": "测试值班长甲", "via": "api"}}
    raw = {b"kind": b"acknowledged", b"at": b"2026-11-25T09:05:00+08:00",
           b"body": json.dumps(body, ensure_ascii=False).encode()}
    event = IncidentEvent.from_fields(raw)
    assert (event.kind, event.id, event.actor, event.detail) == ("acknowledged", INCIDENT_05["id"], "测试值班长甲",
                                                                  {"via": "api"})
    assert event.incident.next_clock is not None and event.incident.next_clock.id == "phone-report"
    assert event.clock is not None and event.clock.due_at == "2026-11-25T09:15:00+08:00"


def test_every_form_written_carries_its_version():
    event = IncidentEvent.of("opened", INCIDENT_05, "2026-11-25T09:00:00+08:00")
    assert versions.version(event.fields()) == versions.EVENT
    state = PagingState(incident=event.incident)
    assert json.loads(state.to_json())["v"] == versions.PAGING
    assert PagingState.from_json(json.dumps({"incident": event.incident.model_dump(mode="json")})).v == versions.PAGING


def test_an_incident_and_its_alerts_without_a_version_read_and_are_written_with_one():
    plan = load_plan("shenzhen-customs")
    doc = {**INCIDENT_05, "clocks": [], "group": "g", "frozen_plan": _as_05(plan), "reminder_before": 300.0}
    inc = Incident.from_json(doc)
    assert inc.frozen_plan.plan == plan
    assert Incident.from_json(inc.to_json()) == inc and inc.to_json()["v"] == versions.INCIDENT
    assert "v" not in inc.public_json()
    alert = StoredAlert.from_json({"fingerprint": "f", "labels": {"fault": "pos.link_down"}, "status": "firing",
                                   "startsAt": "2026-11-25T09:00:00+08:00", "endsAt": None})
    assert alert.to_json()["v"] == versions.ALERT and StoredAlert.from_json(alert.to_json()) == alert
