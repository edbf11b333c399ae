"""Standing duties through a live ``hallmon run``: drill cadence (Guizhou part 1, Xiamen
part 5, Shenzhen 7.2), the monthly summary (Shenzhen 4.3.4), the shift check (Guizhou
part 2), and what ``plan show`` says (readings, coverage)."""
from __future__ import annotations

import asyncio
import socket
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.plans.model import builtin_ids, load_plan
from simulators.nutserver import NutServer
from simulators.redisproc import free_port
from tests.plankit import Hall, Receiver, alert, at, cli, clocks, six_units, wait_for

TZ = ZoneInfo("Asia/Shanghai")
BY = {"by": "测试值班长甲"}


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)




def end_of_quarter(year: int, quarter: int) -> datetime:  # quarter 0..3, may run past 3
    year, quarter = year + quarter // 4, quarter % 4
    first = datetime(year + (quarter == 3), (quarter * 3 + 3) % 12 + 1, 1, tzinfo=TZ)
    return first - timedelta(seconds=1)


def end_of_year(year: int) -> datetime:
    return datetime(year, 12, 31, 23, 59, 59, tzinfo=TZ)


NOW = datetime.now(TZ)
Q = (NOW.month - 1) // 3
DRILL_DUTIES = [  # plan, the drill (fault, site), unit, duty met, due before, due after, duties it must not meet
    ("guizhou-tax", "power.on_battery", "u1a", "u1", "quarterly",
     end_of_quarter(NOW.year, Q), end_of_quarter(NOW.year, Q + 1), ()),  # Guizhou part 1: every quarter
    ("xiamen-tax", "network.down", "u2a", "u2", "network-paralysis",
     end_of_year(NOW.year), end_of_year(NOW.year + 1), ("fire",)),  # Xiamen part 5: yearly, network
    ("xiamen-tax", "manual.fire", "u3a", "u3", "fire",
     end_of_year(NOW.year), end_of_year(NOW.year + 1), ("network-paralysis",)),  # and fire
    ("shenzhen-customs", "queue.down", "u4a", "u4", "levels-2-3",
     end_of_year(NOW.year), end_of_year(NOW.year + 1), ("level-1",)),  # Shenzhen 7.2: levels 2-3 yearly
    ("shenzhen-customs", "system.down", "hqa", "hq", "level-1",
     end_of_year(NOW.year + 1), end_of_year(NOW.year + 2), ()),  # level 1 every two years
]


@pytest.mark.parametrize("plan, fault, site, unit, kind, due_before, due_after, not_met", DRILL_DUTIES,
                         ids=[f"{d[0]}:{d[4]}" for d in DRILL_DUTIES])
def test_drill_duties_guizhou_part_1_xiamen_part_5_shenzhen_7_2(halls, plan, fault, site, unit, kind, due_before,
                                                                 due_after, not_met):
    hall = halls[plan]

    def duties() -> dict:
        return {d["kind"]: d for d in hall.get("/api/v1/drills")["drills"] if d["unit"] == unit}

    duty = duties()[kind]  # a drill falling due is a clock like any other
    assert {"id", "title", "due_at", "status", "audience", "source"} <= set(duty) and duty["id"] == f"drill-{kind}"
    assert (duty["last_at"], duty["status"], at(duty["due_at"])) == (None, "pending", due_before)
    assert duty["source"] == next(d.source for d in load_plan(plan).drills if d.id == kind)
    if fault.startswith("manual."):
        drill = hall.post("/api/v1/incidents", {"category": "fire", "site": site, "summary": "消防演练", "drill": True,
                                                **BY})["id"]
    else:
        drill = hall.alerts(alert(fault, site, unit, drill="true"))
    after = wait_for(lambda: duties()[kind]["last_at"] and duties())
    assert after, "the drill was never recorded"
    assert after[kind]["last_incident"] == drill and at(after[kind]["due_at"]) == due_after
    assert all(after[other]["last_at"] is None for other in not_met)  # a fire drill is no network drill
    last = wait_for(lambda: hall.metric("hallmon_drill_last_timestamp_seconds", unit=unit, kind=kind), timeout=15)
    assert last == at(after[kind]["last_at"]).timestamp()
    assert wait_for(lambda: hall.metric("hallmon_drill_due_timestamp_seconds", unit=unit, kind=kind)
                    == due_after.timestamp(), timeout=15)
    res = hall.cli("drills")
    assert res.returncode == 0 and f"{unit}" in res.stdout and kind in res.stdout


def test_drills_are_refused_to_other_units_tokens_and_unknown_languages(halls):
    hall = halls["guizhou-tax"]
    seen = {d["unit"] for d in hall.get("/api/v1/drills", token="HALLMON_T_PORT")["drills"]}
    assert seen == {"u2"}
    assert hall.call("GET", "/api/v1/drills?lang=fr")[0] == 400
    assert hall.call("GET", "/api/v1/drills", token="HALLMON_T_READ")[0] == 200


# ── the monthly summary (Shenzhen 4.3.4) ────────────────────────────────────────

def test_shenzhen_4_3_4_monthly_summary_by_unit_drills_apart_and_filing_meets_the_clocks(halls):
    hall = halls["shenzhen-customs"]
    month = datetime.now(TZ).strftime("%Y-%m")
    first = hall.alerts(alert("queue.down", "u1a", "u1"))
    second = hall.alerts(alert("pos.link_down", "u1b", "u1"))
    wider = hall.alerts(alert("system.down", "u2a", "u2"))  # a whole unit: level 2, not in the summary
    drill = hall.alerts(alert("queue.down", "u1a", "u1", drill="true"))
    hall.post(f"/api/v1/incidents/{first}/resolve", {**BY, "result": "更换交换机后恢复"})
    for bad in ("2026-13", "26-11", "", "2026-1"):
        status, body = hall.call("GET", f"/api/v1/reports/monthly?month={bad}")
        assert status == 400 and body["error"] == "bad_request" and "month" in body["detail"]
    assert hall.call("POST", "/api/v1/reports/monthly", {"month": "2026-13", **BY})[0] == 400
    assert hall.call("POST", "/api/v1/reports/monthly", {"month": month})[0] == 400  # who filed it
    assert clocks(hall.incident(first))["monthly-summary"]["status"] == "pending"  # nothing filed by a bad body

    report = hall.get(f"/api/v1/reports/monthly?month={month}")
    units = {u["unit"]: [i["id"] for i in u["incidents"]] for u in report["units"]}
    assert set(units["u1"]) >= {first, second} and wider not in units["u2"] and drill not in units["u1"]
    assert drill in [d["id"] for d in report["drills"]] and report["source"] == "Shenzhen 4.3.4"
    row = next(i for i in report["units"][0]["incidents"] if i["id"] == first)
    assert row["cause"] == "排队叫号系统无法访问" and row["result"] == "更换交换机后恢复" and row["resolved_at"]
    assert "三级突发事件月度汇总" in report["text"] and "演练（不计入统计）" in report["text"]
    en = hall.get(f"/api/v1/reports/monthly?month={month}&lang=en")
    assert "Monthly summary of level 3 incidents" in en["text"] and "Queue-number system unreachable" in en["text"]

    port = hall.get(f"/api/v1/reports/monthly?month={month}", token="HALLMON_T_PORT")
    assert [u["unit"] for u in port["units"]] == ["u2"]  # a unit-limited token sees its units only
    assert hall.call("POST", "/api/v1/reports/monthly", {"month": month, "unit": "u1", **BY},
                     token="HALLMON_T_PORT")[0] == 403

    res = hall.cli("report", "monthly", "--month", month, "--file", "--by", "测试值班长甲")
    assert res.returncode == 0 and "clock(s) met" in res.stdout, res.stderr
    for inc_id in (first, second):
        clock = clocks(hall.incident(inc_id))["monthly-summary"]
        assert clock["status"] == "met" and clock["filed"]["by"] == "测试值班长甲" and not clock["filed"]["late"]
    assert "monthly-summary" not in clocks(hall.incident(drill))
    again = hall.post("/api/v1/reports/monthly", {"month": month, **BY})
    assert again["filed"] == []  # met once, not again
    text = hall.cli("report", "monthly", "--month", month).stdout
    assert f"{first}" in text and "[monthly-summary 已报送]" in text
    empty = hall.get("/api/v1/reports/monthly?month=2025-02")
    assert empty["total"] == 0 and "本月无三级突发事件" in empty["text"]


# ── the shift check (Guizhou part 2) ────────────────────────────────────────────

class NutInThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.nut = NutServer({"ups1": {"ups.status": "OL", "battery.charge": "100", "battery.runtime": "2400",
                                       "ups.load": "30"}})
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self.nut.start(), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.nut.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_guizhou_part_2_shift_check_items_prefilled_recorded_and_inherited(tmp_path, redis_url):
    nut, receiver = NutInThread(), Receiver()
    camera = socket.socket()
    camera.bind(("127.0.0.1", 0))
    camera.listen()
    targets = (f'{{id: u1a, name: 测试一关甲厅, targets: ['
               f'{{name: ups-1, kind: ups.nut, address: "{nut.nut.address}", ups: ups1, interval: 1s, timeout: 1s}}, '
               f'{{name: cam-1, kind: net.tcp, address: "127.0.0.1:{camera.getsockname()[1]}", system: monitoring, '
               f'interval: 1s, timeout: 1s}}, '
               f'{{name: phone-1, kind: net.tcp, address: "127.0.0.1:{free_port()}", system: phones, '
               f'interval: 1s, timeout: 1s}}]}}')
    hall = Hall(tmp_path, redis_url, "guizhou-tax", receiver,
                org_edit=lambda text: six_units(text).replace("{id: u1a, name: 测试一关甲厅}", targets))
    try:
        def report() -> dict:
            return hall.get("/api/v1/shift-report?roster=hall-duty")

        def items() -> dict:
            return {row["item"]: row for row in report()["checks"]["items"]}

        seen = wait_for(lambda: (i := items()) and all(r["seen"] for k in ("power", "monitoring", "phones")
                                                       for r in i[k]["hallmon"]) and i, timeout=20)
        assert seen, report()
        assert [(r["target"], r["ok"], r["on_mains"]) for r in seen["power"]["hallmon"]] == [("ups-1", True, True)]
        assert [(r["target"], r["ok"]) for r in seen["monitoring"]["hallmon"]] == [("cam-1", True)]
        assert [(r["target"], r["ok"]) for r in seen["phones"]["hallmon"]] == [("phone-1", False)]
        assert seen["fire"]["hallmon"] == [] and seen["fire"]["start"] is None  # nothing checked yet

        for bad in ({"moment": "noon", "items": {"fire": {"ok": True}}, **BY},
                    {"moment": "start", "items": {"gas": {"ok": True}}, **BY},
                    {"moment": "start", "items": {"water": {"ok": False}}, **BY},  # an anomaly needs a note
                    {"moment": "start", "items": {}, **BY}, {"moment": "start", "items": {"fire": {"ok": True}}},
                    {"moment": "start", "by": "x", "items": {"fire": {"ok": True}}, "at": "2999-01-01T00:00:00+08:00"},
                    {"moment": "start", "by": "x", "items": {"fire": {"ok": True}}, "roster": "nope"}, [1]):
            status, body = hall.call("POST", "/api/v1/shift-checks", bad)
            assert status == 400 and body["error"] == "bad_request", (bad, body)
        assert hall.get("/api/v1/shift-checks")["checks"] == []  # nothing stored by a bad body

        hall.post("/api/v1/shift-checks", {"moment": "start", "items": {
            **{i: {"ok": True} for i in ("fire", "water", "theft", "monitoring", "power")},
            "phones": {"ok": False, "note": "值班电话无拨号音", "follow_up": "已报电信 10000 报修"}}, **BY})
        res = hall.cli("shift-check", "--moment", "end", "--by", "测试值班长乙", "--ok", "fire,water,theft,monitoring",
                       "--anomaly", "power", "配电箱异味", "已通知后勤检修")
        assert res.returncode == 0 and "anomalies: power" in res.stdout, res.stderr
        assert hall.cli("shift-check", "--moment", "end", "--by", "x", "--anomaly", "power").returncode == 1

        rows = items()
        assert (rows["fire"]["start"]["by"], rows["fire"]["start"]["ok"]) == ("测试值班长甲", True)
        assert (rows["fire"]["end"]["by"], rows["fire"]["end"]["ok"]) == ("测试值班长乙", True)
        assert rows["phones"]["start"]["note"] == "值班电话无拨号音" and rows["phones"]["end"] is None
        open_ = {a["item"]: a for a in report()["checks"]["anomalies"]}
        assert set(open_) == {"phones", "power"}  # the next shift inherits both
        assert open_["phones"]["follow_up"] == "已报电信 10000 报修" and open_["power"]["by"] == "测试值班长乙"
        text = hall.get("/api/v1/shift-report?roster=hall-duty&format=text")
        assert "交接班检查" in text and "防火：" in text and "上岗 测试值班长甲 正常" in text
        assert "ups-1 市电供电" in text and "phone-1 故障" in text and "异常 通讯电话：值班电话无拨号音" in text
        en = hall.get("/api/v1/shift-report?roster=hall-duty&format=text&lang=en")
        assert "Shift check" in en and "ups-1 on mains" in en and "ANOMALY phones" in en

        hall.post("/api/v1/shift-checks", {"moment": "end", "items": {"phones": {"ok": True}}, **BY})
        assert {a["item"] for a in report()["checks"]["anomalies"]} == {"power"}  # phones fixed: not inherited
    finally:
        hall.stop()
        nut.stop()
        receiver.stop()
        camera.close()


# ── plan show: readings and coverage ────────────────────────────────────────────

COVERAGE = {  # PLANS.md: the articles each plan's digest names, encoded or deliberately left to people
    "shenzhen-customs": ["Shenzhen 2.2", "Shenzhen 4.3.1", "Shenzhen 4.3.2", "Shenzhen 4.3.3", "Shenzhen 4.3.4",
                         "Shenzhen 5.1.2", "Shenzhen 5.2.2", "Shenzhen 5.4.1", "Shenzhen 7.2", "Shenzhen 7.3.1",
                         "Shenzhen 7.3.2", "Shenzhen 2.1", "Shenzhen 2.1.2(5)"],
    "hohhot-customs": ["Hohhot art. 6", "Hohhot art. 12", "Hohhot art. 16", "Hohhot art. 17", "Hohhot art. 18",
                       "Hohhot art. 19", "Hohhot art. 20", "Hohhot art. 21"],
    "xiamen-tax": ["Xiamen 3(2)1", "Xiamen 3(2)2", "Xiamen 3(3)1", "Xiamen 3(3)2", "Xiamen 3(3)3", "Xiamen 4(1)1",
                   "Xiamen 4(1)2", "Xiamen 4(1)3", "Xiamen 4(1)4", "Xiamen 4(2)-(6)", "Xiamen part 5"],
    "guizhou-tax": ["Guizhou part 1", "Guizhou part 2", "Guizhou part 3", "Guizhou part 4", "Guizhou part 5"],
    "putian-tax": ["Putian art. 3", "Putian art. 4", "Putian art. 7", "Putian art. 2(1)", "Putian art. 5(1)",
                   "Putian art. 5(4)"],
}


@pytest.mark.parametrize("plan", sorted(COVERAGE))
def test_plan_show_coverage_lists_every_article_of_plans_md_once_encoded_or_left(plan):
    res = cli("plan", "show", plan, "--coverage")
    assert res.returncode == 0, res.stderr
    listed = {line.strip().split(":")[0] for line in res.stdout.splitlines() if line.startswith("  ")
              and not line.startswith("    ")}
    assert set(COVERAGE[plan]) <= listed, sorted(set(COVERAGE[plan]) - listed)
    assert "left to people" in res.stdout or plan == "putian-tax"


@pytest.mark.parametrize("plan", builtin_ids())
def test_plan_show_lists_every_reading_hallmon_makes(plan):
    res = cli("plan", "show", plan, "--lang", "en")
    assert res.returncode == 0, res.stderr
    spec = load_plan(plan)
    notes = [x.note for x in (*spec.categories, *spec.level_rules, *spec.clocks, *spec.drills,
                              *spec.reports.values()) if x.note]
    readings = res.stdout.split("readings (where the plan is vague")[1]
    assert notes and all(note in readings for note in notes)
    if any(r.id == "scope-most-units" for r in spec.level_rules):
        assert "more than half" in readings


def test_shenzhen_4_3_4_a_withdrawn_monthly_clock_is_neither_filed_nor_shown_due():
    """A level-3 incident folded into its uplink's has its monthly clock withdrawn: the
    summary says so and filing it leaves that clock alone."""
    from zoneinfo import ZoneInfo

    from monitor.incidents import monthly

    def row(inc_id: str, status: str) -> dict:
        return {"id": inc_id, "sites": ["u1a"], "detected_at": "2026-11-03T10:00:00+08:00", "resolved_at": None,
                "category": "排队叫号", "cause": "排队叫号系统无法访问", "result": None,
                "clocks": [{"id": "monthly-summary", "status": status, "due_at": "2026-12-03T23:59:59+08:00"}]}

    report = {"month": "2026-11", "lang": "zh", "source": "Shenzhen 4.3.4", "total": 2, "drills": [],
              "units": [{"unit": "u1", "name": "测试一关", "incidents": [row("INC-A", "pending"), row("INC-B", "withdrawn")]}]}
    assert monthly.fileable(report) == [("INC-A", "monthly-summary")]
    text = monthly.render(report, ZoneInfo("Asia/Shanghai"))
    assert "INC-B" in text and "[monthly-summary 已撤销]" in text and text.count("报送期限") == 1
