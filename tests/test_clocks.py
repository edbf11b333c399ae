"""Reporting clocks, one test per row of PLANS.md §3, and working days across holidays
with make-up days, and past the calendar's known years."""
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from monitor.core.workdays import WorkCalendar
from monitor.incidents.store import RETENTION
from monitor.plans.clocks import clocks_for, due_time
from monitor.plans.model import load_plan

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 25, 9, 7, tzinfo=TZ)  # a Wednesday
RESOLVED = datetime(2026, 11, 25, 16, 40, tzinfo=TZ)

H, M = timedelta(hours=1), timedelta(minutes=1)
# plan, clock id, level, category, anchor, expected due (PLANS.md §3, row by row)
ROWS = [
    ("hohhot-customs", "leadership-report", 3, "core_system", T0, T0 + 10 * M),       # Hohhot art. 18
    ("shenzhen-customs", "phone-report", 2, "network", T0, T0 + 15 * M),              # Shenzhen 4.3.3
    ("shenzhen-customs", "phone-report", 1, "power", T0, T0 + 15 * M),
    ("shenzhen-customs", "written-report", 2, "pos", T0, T0 + H),                     # Shenzhen 4.3.1, 4.3.3
    ("shenzhen-customs", "report-to-gacc", 1, "core_system", T0, T0 + H),             # Shenzhen 4.3.3 major
    ("shenzhen-customs", "monthly-summary", 3, "queue", T0,
     datetime(2026, 12, 3, 23, 59, 59, tzinfo=TZ)),                                   # Shenzhen 4.3.4 monthly
    ("shenzhen-customs", "team-in-place", 1, "core_system", T0, T0 + 30 * M),         # Shenzhen 5.2.2
    ("shenzhen-customs", "investigation-report", 1, "core_system", RESOLVED,
     RESOLVED + timedelta(days=10)),                                                  # Shenzhen 5.4.1
    ("guizhou-tax", "oral-report", 2, "pos", T0, T0 + 30 * M),                        # Guizhou part 3
    ("guizhou-tax", "written-report", 1, "pos", T0, T0 + H),
    ("guizhou-tax", "provincial-report", 2, "pos", T0, T0 + 2 * H),
    ("guizhou-tax", "final-report", 3, "queue", RESOLVED, RESOLVED + timedelta(days=1)),
    ("guizhou-tax", "continuous-update", 3, "queue", T0, T0 + H),
    ("xiamen-tax", "leadership-report", 3, "pos", T0, T0 + H),                        # Xiamen 3(2)1
    ("xiamen-tax", "result-oral", 3, "pos", RESOLVED, RESOLVED + H),
    ("xiamen-tax", "result-written", 3, "pos", RESOLVED, RESOLVED + timedelta(days=2)),  # Wed → Fri
    ("putian-tax", "upper-report", 1, "power", T0, T0 + H),                           # Putian art. 4
    ("putian-tax", "progress", 3, "power", T0, T0 + H),                               # Putian art. 7
    ("putian-tax", "complete-report", 3, "power", RESOLVED,
     datetime(2026, 11, 26, 23, 59, 59, tzinfo=TZ)),
]


@pytest.mark.parametrize("plan_id, clock_id, level, category, anchor, due", ROWS,
                         ids=[f"{r[0]}:{r[1]}:L{r[2]}" for r in ROWS])
def test_every_row_of_the_clock_table(plan_id, clock_id, level, category, anchor, due):
    plan = load_plan(plan_id)
    resolved = anchor if anchor is RESOLVED else None
    clocks = {c.id: c for c in clocks_for(plan.clocks, level, category, set(), T0, T0, TZ, WorkCalendar(),
                                          resolved)}
    assert clock_id in clocks, sorted(clocks)
    clock = clocks[clock_id]
    assert clock.due_at == due
    assert clock.status == "pending" and clock.source and clock.audience.to


def test_level_filters_which_clocks_exist():
    plan = load_plan("shenzhen-customs")
    l2 = {c.id for c in clocks_for(plan.clocks, 2, "pos", set(), T0, T0, TZ, WorkCalendar())}
    l3 = {c.id for c in clocks_for(plan.clocks, 3, "pos", set(), T0, T0, TZ, WorkCalendar())}
    assert "monthly-summary" not in l2 and "report-to-gacc" not in l2  # level-3-only and level-1-only
    assert l3 == {"monthly-summary"}


def test_hohhot_system_clock_only_for_system_faults():
    plan = load_plan("hohhot-customs")
    ids = {c.id for c in clocks_for(plan.clocks, 3, "queue", set(), T0, T0, TZ, WorkCalendar())}
    assert "leadership-report" not in ids


def test_upgrade_anchors_level_clocks_at_the_upgrade_and_detection_clocks_at_detection():
    plan = load_plan("shenzhen-customs")
    upgraded = T0 + 40 * M
    clocks = {c.id: c for c in clocks_for(plan.clocks, 1, "power", {"monthly-summary"}, T0, upgraded, TZ,
                                          WorkCalendar())}
    assert clocks["phone-report"].due_at == upgraded + 15 * M
    assert clocks["phone-report"].anchor == "upgraded"
    hohhot = load_plan("hohhot-customs")
    clocks = {c.id: c for c in clocks_for(hohhot.clocks, 1, "core_system", set(), T0, upgraded, TZ, WorkCalendar())}
    assert clocks["leadership-report"].due_at == T0 + 10 * M  # "from: detected"
    assert clocks["major-report"].due_at == upgraded + 10 * M  # art. 12: from the upgrade


def test_working_days_skip_the_national_day_holiday():
    cal = WorkCalendar()
    start = datetime(2026, 9, 30, 10, 0, tzinfo=TZ)  # Wed before Oct 1-7
    assert cal.add_working_days(start, 1) == (datetime(2026, 10, 8, 10, 0, tzinfo=TZ), False)
    assert cal.add_working_days(start, 2) == (datetime(2026, 10, 9, 10, 0, tzinfo=TZ), False)


def test_a_weekend_make_up_day_counts_as_a_working_day():
    cal = WorkCalendar()
    friday = datetime(2026, 10, 9, 15, 30, tzinfo=TZ)
    assert cal.add_working_days(friday, 1) == (datetime(2026, 10, 10, 15, 30, tzinfo=TZ), False)  # Saturday 调休
    assert cal.add_working_days(friday, 2)[0] == datetime(2026, 10, 12, 15, 30, tzinfo=TZ)


def test_xiamen_written_report_across_the_holiday():
    plan = load_plan("xiamen-tax")
    resolved = datetime(2026, 9, 30, 17, 0, tzinfo=TZ)
    [written] = [c for c in clocks_for(plan.clocks, 3, "pos", {"leadership-report", "result-oral"}, T0, T0, TZ,
                                       WorkCalendar(), resolved) if c.id == "result-written"]
    assert written.due_at == datetime(2026, 10, 9, 17, 0, tzinfo=TZ)


def test_past_the_known_calendar_falls_back_to_weekdays_marked_estimated():
    cal = WorkCalendar()
    start = datetime(2026, 12, 31, 10, 0, tzinfo=TZ)
    with capture_logs() as logs:
        due, estimated = cal.add_working_days(start, 2)
        cal.add_working_days(start, 3)
    assert estimated is True
    assert due == datetime(2027, 1, 4, 10, 0, tzinfo=TZ)  # Fri Jan 1, Mon Jan 4 (Mon-Fri guess)
    assert [e["event"] for e in logs].count("calendar_year_unknown") <= 1


def test_config_can_supply_next_years_holidays():
    cal = WorkCalendar(holidays=frozenset({date(2027, 1, 1)}), known_years=frozenset({2027}))
    due, estimated = cal.add_working_days(datetime(2026, 12, 31, 10, 0, tzinfo=TZ), 1)
    assert (due, estimated) == (datetime(2027, 1, 4, 10, 0, tzinfo=TZ), False)


def test_records_are_kept_three_years():
    assert RETENTION >= timedelta(days=3 * 365)  # Shenzhen 4.3.4


def test_every_builtin_plan_rule_cites_its_article():
    from monitor.plans.model import builtin_ids

    for plan_id in builtin_ids():
        plan = load_plan(plan_id)
        for rule in (*plan.categories, *plan.level_rules, *plan.clocks):
            assert rule.source.strip(), (plan_id, rule.id)


def test_durations_are_elapsed_time_across_a_dst_change():
    """A site may name any IANA zone; 2 h after 01:30 CEST on the night clocks go back is
    02:30 CET (one hour of wall clock repeats), not 03:30 CET."""
    from datetime import timezone as _utc

    plan = load_plan("guizhou-tax")
    spec = next(c for c in plan.clocks if c.parsed_due() == ("after", 7200.0))
    anchor = datetime(2026, 10, 24, 23, 30, tzinfo=_utc.utc)  # 01:30 CEST, Europe/Berlin
    due, estimated = due_time(spec, anchor, ZoneInfo("Europe/Berlin"), WorkCalendar())
    assert due.astimezone(_utc.utc) == datetime(2026, 10, 25, 1, 30, tzinfo=_utc.utc) and not estimated
