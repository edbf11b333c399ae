"""The webhook and v2-list parsers under hypothesis: a well-formed payload round-trips into
Alerts with the same labels, fingerprint and times; anything else is Invalid with a
detail, never another exception (which would be a 500 instead of a 400)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.alert import Alert, fingerprint
from monitor.core.errors import Invalid
from monitor.service.ingest import Window, check_labels, parse_list, parse_webhook

label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
labels = st.dictionaries(label_names, st.text(max_size=20), min_size=1, max_size=6)
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8))]))


def rfc3339(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@st.composite
def webhook_alert(draw):
    start = draw(times)
    resolved = draw(st.booleans())
    end = draw(times) if resolved else None
    return {"status": "resolved" if resolved else "firing", "labels": draw(labels),
            "annotations": draw(st.dictionaries(label_names, st.text(max_size=30), max_size=3)),
            "startsAt": rfc3339(start),
            "endsAt": rfc3339(end) if end else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.invalid/graph", "fingerprint": "0"}


@given(st.lists(webhook_alert(), max_size=5))
@settings(max_examples=150, deadline=None)
def test_webhook_round_trip(alerts):
    body = json.loads(json.dumps({"version": "4", "status": "firing", "receiver": "hallmon",
                                  "groupLabels": {}, "commonLabels": {}, "alerts": alerts}))
    now = datetime.now(timezone.utc)
    out = parse_webhook(body)
    assert len(out) == len(alerts)
    for raw, a in zip(alerts, out):
        assert isinstance(a, Alert) and dict(a.labels) == raw["labels"]
        assert a.fingerprint == fingerprint(raw["labels"])
        assert a.starts_at == datetime.fromisoformat(raw["startsAt"].replace("Z", "+00:00"))
        if raw["status"] == "resolved":
            # resolved means resolved, even when the sender's clock runs ahead of ours
            assert a.resolved_at(datetime.now(timezone.utc)) is not None
        else:
            assert a.resolved_at(now) is None  # a firing alert is never taken for resolved


@given(st.lists(webhook_alert(), max_size=5))
@settings(max_examples=50, deadline=None)
def test_v2_list_round_trip(alerts):
    for a in alerts:
        del a["status"], a["fingerprint"]
    out = parse_list(json.loads(json.dumps(alerts)))
    assert [dict(a.labels) for a in out] == [a["labels"] for a in alerts]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=12)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_any_json_is_alerts_or_bad_input(value):
    for parse in (parse_webhook, parse_list):
        try:
            parse(value)
        except Invalid as err:
            assert str(err)


@st.composite
def mutated_webhook(draw):
    """A valid payload with one field of one alert replaced by a value of any type."""
    alert = draw(webhook_alert())
    alert[draw(st.sampled_from(sorted(alert)))] = draw(json_values)
    return {"version": "4", "alerts": [alert]}


@given(mutated_webhook())
@settings(max_examples=300, deadline=None)
def test_one_bad_field_is_bad_input(body):
    try:
        parse_webhook(body)
    except Invalid as err:
        assert str(err).startswith("alerts[0]")


def test_times_parsed_once_are_remembered_but_the_window_is_judged_every_time():
    """parse_time remembers valid texts (a storm's alerts share a few startsAt); the
    window still applies to each alert, and an invalid text is refused every time."""
    import pytest

    from monitor.service.ingest import Window

    at = "2026-11-28T06:00:00+08:00"
    now = datetime(2026, 11, 28, tzinfo=timezone.utc)
    ok = parse_list([{"labels": {"a": "b"}, "startsAt": at}], Window(timedelta(days=1), timedelta(hours=1)), now)
    assert ok[0].starts_at == datetime(2026, 11, 27, 22, tzinfo=timezone.utc)
    with pytest.raises(Invalid, match=r"\[0\].startsAt: expected within"):
        parse_list([{"labels": {"a": "b"}, "startsAt": at}], Window(timedelta(hours=1), timedelta(hours=1)),
                   now + timedelta(days=2))
    for _ in range(2):
        with pytest.raises(Invalid, match="between 2000 and 2099"):
            parse_list([{"labels": {"a": "b"}, "startsAt": "0001-01-01T00:00:01Z"}])


def test_fingerprints_memoised_by_label_pair_agree_with_the_plain_hash():
    """The memo of FNV states per (state, name, value) gives Alertmanager's fingerprint."""
    def plain(labels: dict) -> str:
        h = 14695981039346656037
        for name in sorted(labels):
            for part in (name, labels[name]):
                for b in part.encode():
                    h = ((h ^ b) * 1099511628211) & ((1 << 64) - 1)
                h = ((h ^ 0xFF) * 1099511628211) & ((1 << 64) - 1)
        return f"{h:016x}"
    sets = [{"alertname": "HallmonFault", "site": "u1a", "target": f"t-{i}", "测试": "值"} for i in range(50)]
    assert [fingerprint(s) for s in sets] == [plain(s) for s in sets]
    assert [fingerprint(s) for s in sets] == [plain(s) for s in sets]  # from the memo this time


def _outcome(fn, *args):
    try:
        return fn(*args)
    except Invalid as err:
        return f"Invalid: {err}"


@given(st.one_of(mutated_webhook(), st.lists(webhook_alert(), max_size=3).map(
    lambda a: {"version": "4", "alerts": a}), json_values))
@settings(max_examples=300, deadline=None)
def test_the_request_check_refuses_exactly_what_the_parser_refuses(body):
    """The request path checks without building Alerts (check_labels); the intake
    consumer builds them (parse_*): both must accept and refuse the same bodies, with the
    same words, and agree on every alert's labels."""
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    window = Window(timedelta(days=3650), timedelta(days=3650))
    for kind, parse, b in (("webhook", parse_webhook, body),
                           ("list", parse_list, body.get("alerts") if isinstance(body, dict) else body)):
        parsed = _outcome(parse, b, window, now)
        checked = _outcome(check_labels, kind, b, window, now)
        if isinstance(parsed, str):
            assert checked == parsed
        else:
            assert checked == [a.labels for a in parsed]
