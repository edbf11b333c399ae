"""Every plan right in every case, through a live ``hallmon run`` per plan (issue 13): who
is told by category, response groups, reports that start at a level, drills without the
clocks of real incidents, blind spots, "most units", report drafts per plan, working
days. Each test names the article it checks."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from monitor.config.model import load_config
from monitor.paging.handoff import duty_people
from monitor.paging.rosters import Rosters
from monitor.plans.model import builtin_ids, load_plan
from tests.plankit import alert, at, cli, clocks

TZ = ZoneInfo("Asia/Shanghai")
BY = {"by": "测试值班长甲"}


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)




def now() -> datetime:
    return datetime.now(timezone.utc)


def near(ts: str, expected: datetime, slack: float = 20.0) -> bool:
    return abs((at(ts) - expected).total_seconds()) <= slack


# ── who is told ─────────────────────────────────────────────────────────────────

XIAMEN_3_2_2 = [  # fault → the departments the report goes to, and who is copied
    ("system.down", ["信息分局", "征管处"], ["办公室"]),  # tax collection / core IT system
    ("network.down", ["信息分局", "征管处"], ["办公室"]),  # read as the collection system's network
    ("pos.link_down", ["征管处", "计财处"], ["办公室"]),  # POS
    ("manual.dispute", ["征管处", "法规处"], ["办公室"]),  # enforcement and tax disputes
    ("queue.down", ["办公室", "征管处"], []),  # anything else
    ("power.on_battery", ["办公室", "征管处"], []),
    ("lift.stuck", ["办公室", "征管处"], []),  # a fault no category knows
]


@pytest.mark.parametrize("fault, to, cc", XIAMEN_3_2_2, ids=[r[0] for r in XIAMEN_3_2_2])
def test_xiamen_3_2_2_each_category_reports_to_its_departments(halls, fault, to, cc):
    hall = halls["xiamen-tax"]
    if fault.startswith("manual."):
        inc = hall.post("/api/v1/incidents", {"category": fault.removeprefix("manual."), "site": "u1a",
                                              "summary": "窗口涉税争执", **BY})
    else:
        inc = hall.incident(hall.alerts(alert(fault, "u1a", "u1")))
    # 3(2)1: the hall head reports to the leadership group, which reports on by category
    assert clocks(inc)["leadership-report"]["audience"] == {"to": ["应急领导小组", *to], "cc": cc}
    done = hall.post(f"/api/v1/incidents/{inc['id']}/resolve", {**BY, "result": "已恢复"})
    for clock in ("result-oral", "result-written"):
        assert clocks(done)[clock]["audience"] == {"to": to, "cc": cc}


HOHHOT_ART_6 = [("system.down", "技术组"), ("network.down", "技术组"), ("power.on_battery", "后勤保障组"),
                ("queue.down", "监管通关组"), ("pos.link_down", "监管通关组"), ("manual.fire", "综合组")]


@pytest.mark.parametrize("fault, group", HOHHOT_ART_6, ids=[r[0] for r in HOHHOT_ART_6])
def test_hohhot_art_6_the_incident_names_the_response_group_of_its_category(halls, fault, group):
    hall = halls["hohhot-customs"]
    if fault.startswith("manual."):
        inc = hall.post("/api/v1/incidents", {"category": "fire", "site": "u1a", "summary": "配电间冒烟", **BY})
    else:
        inc = hall.incident(hall.alerts(alert(fault, "u1a", "u1")))
    assert inc["response_group"]["name"]["zh"] == group and inc["response_group"]["source"] == "Hohhot art. 6"
    other = halls["shenzhen-customs"]
    assert other.incident(other.alerts(alert(fault.replace("manual.fire", "power.ups_fault"), "u1a", "u1"))
                          )["response_group"] is None  # Shenzhen's plan names no groups


# ── reports that start at a level ───────────────────────────────────────────────

def test_hohhot_art_12_a_major_incident_is_reported_at_once_from_the_upgrade(halls):
    hall = halls["hohhot-customs"]
    t0 = now().replace(microsecond=0) - timedelta(minutes=20)
    system = "uplink-hohhot-12"
    inc_id = hall.alerts(alert("network.down", "u1a", "u1", system=system, starts=t0))
    inc = hall.incident(inc_id)
    assert inc["level"] == 3 and "major-report" not in clocks(inc)
    assert at(clocks(inc)["immediate-report"]["due_at"]) == t0 + timedelta(minutes=10)  # art. 21, from detection
    upgraded_at = now()
    assert hall.alerts(alert("network.down", "hqa", "hq", system=system)) == inc_id  # the head office joins
    inc = hall.incident(inc_id)
    major = clocks(inc)["major-report"]
    assert inc["level"] == 1 and major["anchor"] == "upgraded"
    assert near(major["due_at"], upgraded_at + timedelta(minutes=10))  # at once, read as 10 min, from the upgrade
    assert major["audience"]["to"] == ["应急领导小组", "海关总值班室", "相关业务职能部门"]
    direct = hall.incident(hall.alerts(alert("system.down", "hqa", "hq", starts=t0)))
    assert direct["level"] == 1 and at(clocks(direct)["major-report"]["due_at"]) == t0 + timedelta(minutes=10)


def test_xiamen_3_3_each_level_reports_at_once_from_reaching_it(halls):
    hall = halls["xiamen-tax"]
    t0 = now().replace(microsecond=0) - timedelta(minutes=20)
    inc_id = hall.alerts(alert("queue.down", "u1a", "u1", starts=t0))
    inc = hall.incident(inc_id)
    assert inc["level"] == 3 and at(clocks(inc)["level-3-report"]["due_at"]) == t0 + timedelta(minutes=15)
    assert clocks(inc)["level-3-report"]["audience"]["to"] == ["区局征管科科长"]
    for flag, level, clock, to in (("injuries", 2, "level-2-report", ["区局分管局领导", "市局有关处室负责人"]),
                                   ("casualties", 1, "level-1-report", ["市局有关处室负责人"])):
        raised = now()
        inc = hall.post(f"/api/v1/incidents/{inc_id}/flags", {"flags": [flag], "reason": "现场报告", **BY})
        assert inc["level"] == level
        assert near(clocks(inc)[clock]["due_at"], raised + timedelta(minutes=15)), clock  # from the upgrade
        assert clocks(inc)[clock]["audience"]["to"] == to and clocks(inc)[clock]["source"].startswith("Xiamen 3(3)")


# ── drills and blind spots ──────────────────────────────────────────────────────

@pytest.mark.parametrize("plan", builtin_ids())
def test_shenzhen_4_3_4_a_drill_gets_every_clock_but_those_of_real_incidents_only(halls, plan):
    hall = halls[plan]
    system = f"drill-{plan}"
    drill = hall.incident(hall.alerts(alert("queue.down", "u1a", "u1", system=system, drill="true")))
    real = hall.incident(hall.alerts(alert("queue.down", "u1a", "u1", system=system)))
    assert drill["drill"] and drill["id"].startswith("DRILL-") and not real["drill"]
    real_only = {c.id for c in load_plan(plan).clocks if not c.drills}
    assert set(clocks(drill)) == set(clocks(real)) - real_only
    if plan == "shenzhen-customs":
        assert "monthly-summary" in clocks(real) and real_only == {"monthly-summary"}


@pytest.mark.parametrize("plan", builtin_ids())
def test_blind_spots_are_monitoring_incidents_without_statutory_clocks(halls, plan):
    hall = halls[plan]
    system = f"ups-blind-{plan}"
    inc = hall.incident(hall.alerts(*(alert("power.ups_unreachable", s, u, system=system)
                                      for s, u in (("u2a", "u2"), ("u3a", "u3"), ("u4a", "u4"), ("u5a", "u5")))))
    # four whole units out of six would be level 1 by scope: a blind spot stays level 3
    assert (inc["category"], inc["level"], inc["clocks"]) == ("monitoring", 3, [])
    done = hall.post(f"/api/v1/incidents/{inc['id']}/resolve", {**BY, "result": "upsd 重启后恢复读取"})
    assert done["clocks"] == []
    draft = hall.get(f"/api/v1/incidents/{inc['id']}/report?kind=phone")
    assert "UPS 无法连接" in draft and draft.count("power.ups_unreachable") == draft.count("UPS 无法连接 (")


# ── "most units" ────────────────────────────────────────────────────────────────

SCOPE_PLANS = [p for p in builtin_ids() if any(r.id == "scope-most-units" for r in load_plan(p).level_rules)]
MOST_UNITS = [  # sites (one-site units of six) → level, rule
    (("u2a", "u3a"), 2, "scope-whole-unit"),
    (("u2a", "u3a", "u4a"), 2, "scope-whole-unit"),  # exactly half: not "most"
    (("u2a", "u3a", "u4a", "u5a"), 1, "scope-most-units"),  # more than half
]


@pytest.mark.parametrize("plan", SCOPE_PLANS)
@pytest.mark.parametrize("sites, level, rule", MOST_UNITS, ids=["2of6", "3of6", "4of6"])
def test_shenzhen_2_2_most_units_means_more_than_half(halls, plan, sites, level, rule):
    hall = halls[plan]
    inc = hall.incident(hall.alerts(*(alert("system.down", s, s[:2], system=f"core-{plan}-{len(sites)}")
                                      for s in sites)))
    assert (inc["level"], inc["decision"]["rule"]) == (level, rule)
    assert inc["decision"]["facts"]["units_share"] == round(len(sites) / 6, 4)


# ── report drafts per plan ──────────────────────────────────────────────────────

@pytest.mark.parametrize("plan", builtin_ids())
def test_shenzhen_4_3_2_every_draft_follows_its_own_plan_with_the_roster_filled_in(halls, plan):
    hall = halls[plan]
    inc_id = hall.alerts(alert("power.on_battery", "u1a", "u1", system=f"draft-{plan}"))
    spec = load_plan(plan)
    people = duty_people(Rosters(load_config(hall.config).paging), now())
    for kind, tpl in spec.reports.items():
        names_faults = bool({"cause", "impact", "summary", "investigation"} & set(tpl.fields))
        for lang in ("zh", "en"):
            status, draft = hall.call("GET", f"/api/v1/incidents/{inc_id}/report?kind={kind}&lang={lang}")
            assert status == 200 and isinstance(draft, str)
            assert f"({tpl.source})" in draft.splitlines()[0] and tpl.title.get(lang) in draft
            words = "市电中断，UPS 电池供电" if lang == "zh" else "Mains power lost, UPS on battery"
            assert draft.count("power.on_battery") == draft.count(f"{words} (power.on_battery)")  # words first
            assert (words in draft) == names_faults
        status, data = hall.call("GET", f"/api/v1/incidents/{inc_id}/report?kind={kind}", accept="application/json")
        assert status == 200
        assert [f["key"] for f in data["fields"]] == list(tpl.fields) and data["source"] == tpl.source
        values = {f["key"]: f["value"] for f in data["fields"]}
        if "approver" in values:
            assert values["approver"] == people["leader"]["name"]
        if "handler" in values:  # the duty chief by name; the phone the roster lacks is a marked blank
            assert values["handler"].startswith(people["handler"]["name"])
            assert (people["handler"].get("phone") or "【待填写】") in values["handler"]
        log = {r["key"]: r["value"] for r in data["duty_log"]}
        assert bool(log) == tpl.duty_log
        if log:  # Shenzhen 4.3.2: both sides' handlers, the time, the other side's department and phone
            assert log["our_handler"] == people["handler"]["name"] and log["their_handler"] == "【待填写】"
            first = sorted((c for c in hall.incident(inc_id)["clocks"] if c["anchor"] != "resolved"),
                           key=lambda c: c["due_at"])
            assert log["their_department"] == ("、".join(first[0]["audience"]["to"]) if first else "【待填写】")
            assert log["their_phone"] == "【待填写】"


def test_xiamen_3_2_1_written_report_has_xiamens_elements_and_cites_xiamen(halls):
    hall = halls["xiamen-tax"]
    inc_id = hall.alerts(alert("pos.link_down", "u1a", "u1"))
    text = hall.get(f"/api/v1/incidents/{inc_id}/report?kind=written")
    labels = [line.split("：")[0] for line in text.splitlines()[1:] if "：" in line]
    assert labels == ["时间", "地点", "背景", "影响范围", "造成损失", "已采取的措施及效果"]
    assert "(Xiamen 3(2)1)" in text.splitlines()[0] and "Shenzhen" not in text
    assert "POS 机无法扣款" not in text  # the cause is not one of Xiamen's elements


# ── working days ────────────────────────────────────────────────────────────────

def workdays_after(start: date, n: int) -> date:
    day = start
    while n:
        day += timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


RESOLVED = [datetime(2025, 9, 30, 17, 0, tzinfo=TZ),  # National Day and Mid-Autumn 2025, make-up Oct 11
            datetime(2025, 12, 31, 16, 0, tzinfo=TZ),  # New Year 2026
            datetime(2026, 2, 13, 11, 30, tzinfo=TZ),  # Spring Festival 2026, make-up Sat Feb 14
            datetime(2026, 4, 30, 18, 0, tzinfo=TZ),  # Labour Day 2026
            datetime(2026, 9, 30, 17, 0, tzinfo=TZ)]


@pytest.mark.parametrize("resolved", RESOLVED, ids=[r.strftime("%Y-%m-%d") for r in RESOLVED])
def test_xiamen_3_2_1_written_report_two_working_days_by_chinas_calendar(halls, resolved):
    hall = halls["xiamen-tax"]
    inc_id = hall.alerts(alert("queue.down", "u1a", "u1", starts=resolved - timedelta(hours=3)))
    done = hall.post(f"/api/v1/incidents/{inc_id}/resolve", {**BY, "result": "已恢复", "at": resolved.isoformat()})
    written = clocks(done)["result-written"]
    expected = datetime.combine(workdays_after(resolved.date(), 2), resolved.timetz())
    assert at(written["due_at"]) == expected and written["estimated"] is False


def test_xiamen_3_2_1_written_report_in_2027_by_the_configs_holidays(halls, tmp_path):
    """Past the calendar library's years the config's holidays count: through ``plan
    explain``, which runs the router's own lifecycle and the config's calendar."""
    hall = halls["xiamen-tax"]
    for resolved, due in ((datetime(2027, 2, 4, 17, 0, tzinfo=TZ), datetime(2027, 2, 16, 17, 0, tzinfo=TZ)),
                          (datetime(2027, 2, 19, 9, 0, tzinfo=TZ), datetime(2027, 2, 22, 9, 0, tzinfo=TZ)),
                          (datetime(2026, 12, 31, 9, 0, tzinfo=TZ), datetime(2027, 1, 5, 9, 0, tzinfo=TZ))):
        alerts = tmp_path / "alerts.json"
        alerts.write_text(json.dumps([alert("queue.down", "u1a", "u1", starts=now() - timedelta(hours=1))]))
        res = cli("plan", "explain", "-c", str(hall.config), "--alerts", str(alerts), "--resolved-at",
                  resolved.isoformat(), "--json")
        assert res.returncode == 0, res.stderr
        [inc] = json.loads(res.stdout)
        written = next(c for c in inc["clocks"] if c["id"] == "result-written")
        assert (at(written["due_at"]), written["estimated"]) == (due, False)
