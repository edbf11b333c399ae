"""Duty rosters: hand-off at a local time, weekly layers, overrides, working-day layers
that follow China's calendar (make-up days included), and `hallmon oncall`."""
import json
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.config.paging import PagingConfig
from monitor.paging.rosters import Rosters
from tests.conftest import ROOT

TZ = ZoneInfo("Asia/Shanghai")
PAGING = {
    "people": [{"id": p, "name": n, "channels": ["hook"]} for p, n in
               (("duty-a", "测试值班长甲"), ("duty-b", "测试值班长乙"), ("lead-a", "测试值班领导甲"),
                ("lead-b", "测试值班领导乙"), ("desk-a", "测试窗口甲"))],
    "channels": [{"id": "hook", "type": "webhook", "url": "http://127.0.0.1:9/page"}],
    "rosters": [{
        "id": "hall-duty", "timezone": "Asia/Shanghai",
        "layers": [
            {"id": "duty_chief", "members": ["duty-a", "duty-b"],
             "rotation": {"every": "1d", "handoff": "08:30", "start": "2026-11-02"}},
            {"id": "duty_leader", "members": ["lead-a", "lead-b"],
             "rotation": {"every": "7d", "handoff": "08:30", "start": "2026-11-02"}},
            {"id": "weekday_desk", "members": ["desk-a"], "working_days_only": True,
             "rotation": {"every": "1d", "handoff": "08:30", "start": "2026-01-01"}},
        ],
        "overrides": [{"layer": "duty_chief", "person": "duty-a", "from": "2026-12-01T08:30+08:00",
                       "to": "2026-12-02T08:30+08:00"}],
    }],
}


@pytest.fixture
def rosters():
    return Rosters(PagingConfig.model_validate(PAGING))


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_daily_hand_off_at_0830_local(rosters):
    assert rosters.on_duty("hall-duty", "duty_chief", at("2026-11-02T08:29")).id == "duty-b"  # the day before
    assert rosters.on_duty("hall-duty", "duty_chief", at("2026-11-02T08:30")).id == "duty-a"
    assert rosters.on_duty("hall-duty", "duty_chief", at("2026-11-03T08:29")).id == "duty-a"
    assert rosters.on_duty("hall-duty", "duty_chief", at("2026-11-03T08:30")).id == "duty-b"


def test_weekly_leader_layer(rosters):
    assert rosters.on_duty("hall-duty", "duty_leader", at("2026-11-08T20:00")).id == "lead-a"
    assert rosters.on_duty("hall-duty", "duty_leader", at("2026-11-09T08:30")).id == "lead-b"


def test_override_wins_for_its_range_only(rosters):
    chief = rosters.rosters["hall-duty"].layers[0]
    # by rotation: Nov 30 duty-a, Dec 1 duty-b, Dec 2 duty-a, Dec 3 duty-b; the override gives Dec 1 to duty-a
    assert rosters.on_duty("hall-duty", "duty_chief", at("2026-12-01T08:29")).id == "duty-a"  # Nov 30's shift
    shift = rosters.shift(rosters.rosters["hall-duty"], chief, at("2026-12-01T12:00"))
    assert shift.person.id == "duty-a" and shift.override
    assert rosters.on_duty("hall-duty", "duty_chief", at("2026-12-02T12:00")).id == "duty-a"
    assert rosters.on_duty("hall-duty", "duty_chief", at("2026-12-03T12:00")).id == "duty-b"


def test_working_day_layer_follows_the_chinese_calendar(rosters):
    assert rosters.on_duty("hall-duty", "weekday_desk", at("2026-10-10T10:00")).id == "desk-a"  # Saturday make-up day
    assert rosters.on_duty("hall-duty", "weekday_desk", at("2026-10-05T10:00")) is None  # Monday, National Day
    assert rosters.on_duty("hall-duty", "weekday_desk", at("2026-10-11T10:00")) is None  # an ordinary Sunday


def test_schedule_lists_every_shift_in_order(rosters):
    shifts = rosters.schedule("hall-duty", at("2026-11-02T08:30"), days=3)
    chiefs = [(s.start.strftime("%m-%d %H:%M"), s.person.id) for s in shifts if s.layer == "duty_chief"]
    assert chiefs == [("11-02 08:30", "duty-a"), ("11-03 08:30", "duty-b"), ("11-04 08:30", "duty-a")]


def test_bad_rosters_are_config_errors(tmp_path):
    from monitor.config.model import load_config
    from monitor.core.errors import ConfigError

    head = "organisation: {name: t, units: [{id: u, name: U, sites: [{id: s, name: S}]}]}\n"
    cfg = tmp_path / "h.yml"
    cfg.write_text(head + """\
paging:
  people: [{id: duty-a, name: 测试甲, channels: [hook]}]
  channels: [{id: hook, type: webhook, url: "http://127.0.0.1:9/page"}]
  rosters:
    - id: r
      layers: [{id: l, members: [duty-a], rotation: {every: 1d, handoff: "25:00", start: 2026-11-02}}]
  policies:
    - id: p
      steps: [{notify: {roster: r, layer: l}}, {wait: soon}]
""")
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    text = str(exc.value)
    assert f"{cfg}:7: paging.rosters[0].layers[0].rotation.handoff: expected a local time like 08:30" in text
    assert f"{cfg}:10: paging.policies[0].steps[1].wait: expected a duration like 10s" in text
    cfg.write_text(head + """\
paging:
  people: [{id: duty-a, name: 测试甲, channels: [nope]}]
  rosters:
    - id: r
      layers: [{id: l, members: [ghost], rotation: {every: 1d, handoff: "08:30", start: 2026-11-02}}]
  policies:
    - id: p
      steps: [{notify: {roster: r, layer: missing}}]
""")
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    text = str(exc.value)
    assert f"{cfg}:3: paging.people[0].channels[0]: no channel 'nope'" in text
    assert "paging.rosters[0].layers[0].members[0]: no person 'ghost'" in text
    assert "paging.policies[0].steps[0].notify.roster: no roster layer r/missing" in text


def test_oncall_who_and_show_commands(tmp_path):
    import yaml

    cfg = tmp_path / "h.yml"
    cfg.write_text(yaml.safe_dump({"organisation": {"name": "t", "units": [
        {"id": "u", "name": "U", "sites": [{"id": "s", "name": "S"}]}]}, "paging": PAGING}, allow_unicode=True))
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "oncall", "who", "-c", str(cfg), "--roster",
                          "hall-duty", "--at", "2026-12-01T09:00+08:00", "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    rows = {r["layer"]: r for r in json.loads(res.stdout)}
    assert rows["duty_chief"]["person"] == "duty-a" and rows["duty_chief"]["override"] is True
    assert rows["duty_leader"]["name"] == "测试值班领导甲"
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "oncall", "show", "hall-duty", "-c", str(cfg),
                          "--days", "14", "--at", "2026-11-02T08:30+08:00"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.count("duty_chief") == 14


def test_oncall_who_without_rosters_says_so(tmp_path):
    cfg = tmp_path / "h.yml"
    cfg.write_text("organisation: {name: t, units: [{id: u, name: U, sites: [{id: s, name: S}]}]}\n")
    res = subprocess.run([sys.executable, "-m", "monitor.cli", "oncall", "who", "-c", str(cfg)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "no rosters" in res.stderr and res.stdout == ""
