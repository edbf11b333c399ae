"""The incident side's records survive their own JSON round trip exactly, for every
built-in plan: arbitrary values of every field, and incidents built the way the router
builds them (random alerts opened, merged, flagged, levelled, reported and resolved)."""
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.alert import Alert
from monitor.core.timesource import fixed
from monitor.incidents import actions, clocktimers, lifecycle
from monitor.incidents.classify import group
from monitor.incidents.records import (
    Ack,
    Classification,
    FrozenPlan,
    Incident,
    LevelChange,
    Report,
    Resolution,
    StoredAlert,
    TimelineEntry,
)
from monitor.incidents.view import ConfigView
from monitor.plans.clocks import Clock, Filing
from monitor.plans.levels import Decision, Facts
from monitor.plans.model import FLAGS, Audience, Plan, builtin_ids, load_plan

ZONES = [timezone.utc, ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin"), timezone(timedelta(hours=-3, minutes=-30))]
# records hold UTC or fixed-offset times (a zone's repeated hour would compare unequal to
# itself read back, PEP 495): what the clocks and the router produce, ``fixed``
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.sampled_from(ZONES)).map(fixed)
names = st.text(min_size=1, max_size=12)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=10)
maybe = st.none
reals = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | reals | names,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ids, inner, max_size=3),
                           max_leaves=8)

facts_s = st.builds(Facts, category=ids, units=st.tuples(ids), sites=st.tuples(ids, ids),
                    units_affected=st.integers(0, 99), units_total=st.integers(0, 99),
                    units_share=st.floats(0, 1), units_whole=st.tuples(ids), head_office_units=st.tuples(),
                    lasting_seconds=reals, flags=st.lists(st.sampled_from(FLAGS), unique=True).map(tuple))
decision_s = st.builds(Decision, level=st.integers(1, 3), rule=ids, source=names, note=maybe() | names,
                       facts=facts_s, by=maybe() | names, reason=maybe() | names)
clock_s = st.builds(Clock, id=ids, title=names, title_en=names, due_at=times,
                    status=st.sampled_from(["pending", "met", "overdue"]),
                    audience=st.builds(Audience, to=st.tuples(names), cc=st.tuples(names) | st.tuples()),
                    source=names, anchor=st.sampled_from(["detected", "upgraded", "resolved"]), anchored_at=times,
                    estimated=st.booleans(), every_seconds=maybe() | st.floats(1, 1e6),
                    seq=st.integers(1, 999), reminded=st.booleans(),
                    filed=maybe() | st.builds(Filing, by=names, at=times, note=maybe() | names,
                                              late=maybe() | st.booleans()))
ms_times = times.map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
stored_alert_s = st.builds(StoredAlert, fingerprint=ids, labels=st.dictionaries(ids, names, max_size=4),
                           annotations=st.dictionaries(ids, names, max_size=2), starts_at=ms_times,
                           ends_at=maybe() | ms_times, status=st.sampled_from(["firing", "resolved"]), source=ids)
timeline_s = st.builds(TimelineEntry, seq=st.integers(1, 10**6), at=times, actor=names, action=ids,
                       detail=st.dictionaries(ids, json_values, max_size=4), prev=ids, hash=ids)
classification_s = st.builds(Classification, plan=st.sampled_from(builtin_ids()), category=ids, system=ids,
                             site=maybe() | ids, unit=maybe() | ids, fault=maybe() | ids, unmapped=st.booleans(),
                             drill=st.booleans(), manual=st.booleans(), group=names, fingerprint=ids)


@st.composite
def incidents(draw) -> Incident:
    plan = load_plan(draw(st.sampled_from(builtin_ids())))
    return Incident(
        id=draw(ids), group=draw(names), status=draw(st.sampled_from(["open", "acknowledged", "resolved"])),
        recovered=draw(st.booleans()), level=draw(st.integers(1, 3)), level_name=draw(names), plan=plan.id,
        category=draw(ids), system=draw(ids), sites=tuple(draw(st.lists(ids, max_size=4))),
        units=tuple(draw(st.lists(ids, max_size=3))), detected_at=draw(times), opened_at=draw(times),
        decision=draw(maybe() | decision_s),
        level_history=tuple(draw(st.lists(st.builds(LevelChange, level=st.integers(1, 3), at=times, by=names,
                                                    rule=ids, reason=maybe() | names), max_size=3))),
        level_since=draw(times), clocks=tuple(draw(st.lists(clock_s, max_size=4))),
        flags=tuple(draw(st.lists(st.sampled_from(FLAGS), unique=True))), faults=tuple(draw(st.lists(ids, max_size=3))),
        drill=draw(st.booleans()), maintenance=draw(st.booleans()), unmapped=draw(st.booleans()),
        manual=draw(st.booleans()), alerts_firing=draw(st.integers(0, 10**6)), alerts_total=draw(st.integers(0, 10**6)),
        acknowledged=draw(maybe() | st.builds(Ack, by=names, at=times, via=st.sampled_from(["api", "link"]))),
        resolved=draw(maybe() | st.builds(Resolution, by=names, at=times, result=names, recorded_at=times)),
        reports=tuple(draw(st.lists(st.builds(Report, clock=ids, seq=st.integers(1, 9), by=names, at=times,
                                              note=maybe() | names, late=st.booleans()), max_size=3))),
        reminder_before=draw(st.floats(0, 86400)), frozen_plan=FrozenPlan.of(plan),
        timeline_seq=draw(st.integers(0, 10**6)), timeline_head=draw(ids), updated_at=draw(maybe() | times))


def through_json(record):
    """What the store does: JSON text in Redis and back."""
    return type(record).from_json(json.loads(json.dumps(record.to_json(), ensure_ascii=False)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(incidents())
def test_any_incident_survives_its_json_round_trip(inc):
    back = through_json(inc)
    assert back == inc
    assert back.to_json() == inc.to_json()
    assert back.frozen_plan.plan == inc.frozen_plan.plan  # the frozen plan validates again when read back


@settings(max_examples=200)
@given(st.one_of(clock_s, decision_s, facts_s, stored_alert_s, timeline_s, classification_s))
def test_every_record_survives_its_json_round_trip(record):
    assert through_json(record) == record


@pytest.mark.parametrize("plan", builtin_ids())
def test_every_builtin_plan_survives_its_own_json_round_trip(plan):
    """Regression (0.5): guizhou-tax's `lasting_at_least` was stored as 7200.0, which its
    own validator refused when read back."""
    frozen = load_plan(plan)
    assert Plan.model_validate(json.loads(json.dumps(frozen.model_dump(mode="json", by_alias=True)))) == frozen


SITES = [("s1", "u1"), ("s2", "u1"), ("s3", "u2"), ("s4", "u3")]
FAULTS = ["system.down", "power.on_battery", "network.down", "pos.link_down", "queue.down", "queue.congested",
          "hardware.camera", "manual.fire", "coffee.empty"]


@st.composite
def alert_sets(draw) -> list[Alert]:
    base = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)
    out = []
    for _ in range(draw(st.integers(1, 6))):
        site, unit = draw(st.sampled_from(SITES))
        labels = {"alertname": "HallmonFault", "fault": draw(st.sampled_from(FAULTS)), "site": site, "unit": unit,
                  "target": draw(st.sampled_from(["a", "b", "c"]))}
        if draw(st.booleans()):
            labels["cause"] = "network.down"
        starts = base + timedelta(seconds=draw(st.integers(0, 7200)), microseconds=draw(st.integers(0, 999_999)))
        ends = starts + timedelta(minutes=draw(st.integers(1, 60))) if draw(st.booleans()) else None
        out.append(Alert(labels=labels, starts_at=starts, ends_at=ends, annotations={"summary": "x"}))
    return out


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(builtin_ids()), alert_sets(), alert_sets(), st.data())
def test_incidents_built_as_the_router_builds_them_survive_the_round_trip(plan, first, later, data):
    now = datetime(2026, 11, 25, 4, 0, tzinfo=timezone.utc)
    view = ConfigView.from_alerts([*first, *later], plan)
    for n, (key, items) in enumerate(group(first, view).items()):
        if not lifecycle.firing(items, now):
            continue
        inc, change = lifecycle.open_incident(f"INC-{n}", key, items, now, view)
        steps = [inc]
        more = [(a, c) for a, c in (group(later, view).get(key) or [])]
        merged = lifecycle.merge(inc, {}, more, now, change, view) if more else None
        if merged is not None:
            inc = lifecycle.relevel(merged, now, change, view)
            steps.append(inc)
        for action in data.draw(st.lists(st.sampled_from(["ack", "flags", "level", "report", "fire", "resolve"]),
                                         max_size=5)):
            when = now + timedelta(minutes=len(steps))
            try:
                if action == "ack":
                    outcome = actions.ack(inc, "测试值班长甲", "api", when)
                elif action == "flags":
                    outcome = actions.set_flags(inc, [data.draw(st.sampled_from(FLAGS))], "测试值班长甲", "r", when, view)
                elif action == "level":
                    outcome = actions.set_level(inc, data.draw(st.integers(1, 3)), "测试值班领导甲", "r", (), when, view)
                elif action == "report" and inc.clocks:
                    clock = data.draw(st.sampled_from(inc.clocks))
                    outcome = actions.file_report(inc, clock.id, "测试值班长甲", None, "已报", when)
                elif action == "fire" and inc.clocks:
                    clock = data.draw(st.sampled_from(inc.clocks))
                    payload = {"clock": clock.id, "seq": clock.seq, "what": data.draw(st.sampled_from(["remind", "due"]))}
                    outcome = clocktimers.fire(inc, "t", payload, clock.due_at + timedelta(days=3))
                else:
                    outcome = actions.resolve(inc, "测试值班长甲", "已恢复", None, when, view)
            except Exception as err:  # a refused action (resolved already…) changes nothing
                assert type(err).__name__ in ("Conflict", "Invalid"), err
                continue
            if outcome is not None:
                inc = outcome[0]
                steps.append(inc)
        for step in steps:
            assert through_json(step) == step
