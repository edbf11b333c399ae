"""Drill duties fall due at the end of a calendar period (Guizhou part 1: a quarter;
Xiamen part 5 and Shenzhen 7.2: a year, or two for level 1), counted from the last
drill, or from when hallmon first saw the duty."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.incidents.drills import due_at, period_end, period_index
from monitor.plans.model import DrillSpec, load_plan

TZ = ZoneInfo("Asia/Shanghai")


def spec(period: str, every: int = 1) -> DrillSpec:
    return DrillSpec(id="d", title={"zh": "演练", "en": "drill"}, period=period, every=every, source="test")


CASES = [  # period, every, last drill (local), first seen (local), due (local)
    ("quarter", 1, None, datetime(2026, 11, 28, 12, 0), datetime(2026, 12, 31, 23, 59, 59)),
    ("quarter", 1, datetime(2026, 12, 31, 23, 0), datetime(2026, 1, 1), datetime(2027, 3, 31, 23, 59, 59)),
    ("quarter", 1, datetime(2027, 1, 1, 0, 30), datetime(2026, 1, 1), datetime(2027, 6, 30, 23, 59, 59)),
    ("quarter", 1, datetime(2026, 6, 30, 23, 59), datetime(2026, 1, 1), datetime(2026, 9, 30, 23, 59, 59)),
    ("year", 1, None, datetime(2026, 3, 1), datetime(2026, 12, 31, 23, 59, 59)),
    ("year", 1, datetime(2026, 1, 1, 0, 0), datetime(2025, 1, 1), datetime(2027, 12, 31, 23, 59, 59)),
    ("year", 2, None, datetime(2026, 3, 1), datetime(2027, 12, 31, 23, 59, 59)),
    ("year", 2, datetime(2026, 5, 1), datetime(2025, 1, 1), datetime(2028, 12, 31, 23, 59, 59)),
]


@pytest.mark.parametrize("period, every, last, since, due", CASES)
def test_a_drill_falls_due_at_the_end_of_its_period(period, every, last, since, due):
    got = due_at(spec(period, every), last.replace(tzinfo=TZ) if last else None, since.replace(tzinfo=TZ), TZ)
    assert got == due.replace(tzinfo=TZ)


def test_periods_follow_the_local_calendar_not_utc():
    # 2026-12-31 20:00 UTC is already 2027-01-01 04:00 in Shanghai: the first quarter of 2027
    utc_evening = datetime(2026, 12, 31, 20, 0, tzinfo=ZoneInfo("UTC"))
    assert period_index(utc_evening.astimezone(TZ), "quarter") == 2027 * 4
    assert period_end(2027 * 4, "quarter", TZ) + timedelta(seconds=1) == datetime(2027, 4, 1, tzinfo=TZ)


def test_a_drill_counts_for_the_duties_whose_faults_and_levels_it_meets():
    xiamen = {d.id: d for d in load_plan("xiamen-tax").drills}
    assert xiamen["fire"].counts(["manual.fire"], 3) and not xiamen["fire"].counts(["network.down"], 3)
    assert xiamen["network-paralysis"].counts(["network.down"], 3)
    shenzhen = {d.id: d for d in load_plan("shenzhen-customs").drills}
    assert shenzhen["level-1"].counts(["system.down"], 1) and not shenzhen["level-1"].counts(["system.down"], 2)
    assert shenzhen["levels-2-3"].counts(["queue.down"], 3) and not shenzhen["levels-2-3"].counts(["queue.down"], 1)
