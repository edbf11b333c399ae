"""One working-day calendar per config: a holiday (or make-up day) added under
``calendar:`` counts for the reporting clocks, the rosters' working-day layers, the
shift report and the queue probe's opening hours alike."""
import asyncio
import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.config.model import load_config
from monitor.core.hours import is_open
from monitor.core.workdays import WorkCalendar
from simulators.queue import QueueSystem
from tests.conftest import ROOT
from tests.pagingkit import paging_yaml
from tests.routerkit import TOKENS, alert, auth, make_app, org_config

TZ = ZoneInfo("Asia/Shanghai")
OFFICIAL = WorkCalendar()


pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not OFFICIAL.is_workday(day)[0]:
        day += timedelta(days=1)
    return day


def calendar_yaml(holidays: list[date], workdays: list[date] = ()) -> str:
    return (f"calendar:\n  holidays: [{', '.join(map(str, holidays))}]\n"
            f"  workdays: [{', '.join(map(str, workdays))}]\n")


# the desk layer works on working days only; the shift report's "incoming" is its person
DESK = paging_yaml("http://127.0.0.1:9").replace(
    "layers:\n",
    "layers:\n        - {id: desk, members: [duty-b], working_days_only: true,"
    " rotation: {every: 1d, handoff: \"08:30\", start: 2026-01-01}}\n")


async def test_a_config_holiday_moves_a_working_day_clock_and_empties_a_working_day_layer(
        aiohttp_client, tmp_path, redis_url):
    now = datetime.now(TZ).replace(microsecond=0)
    holiday = next_workday(now.date())  # the first working day after today, made a holiday
    extra = DESK + calendar_yaml([holiday])
    client = await aiohttp_client(make_app(tmp_path, redis_url, plan="xiamen-tax", extra=extra))
    resp = await client.post("/api/v1/alerts", json=[alert("pos.link_down", "u2a", "u2",
                                                           starts=now - timedelta(hours=2))], headers=auth())
    [inc_id] = (await resp.json())["incidents"]
    resolved = now - timedelta(minutes=30)
    resp = await client.post(f"/api/v1/incidents/{inc_id}/resolve",
                             json={"by": "测试值班长甲", "result": "已恢复", "at": resolved.isoformat()}, headers=auth())
    assert resp.status == 200, await resp.text()
    due = next(datetime.fromisoformat(c["due_at"]) for c in (await resp.json())["clocks"]
               if c["id"] == "result-written")  # Xiamen 3(2)1: resolved + 2 working days
    official, _ = OFFICIAL.add_working_days(resolved, 2)
    with_holiday, _ = WorkCalendar(holidays=frozenset({holiday})).add_working_days(resolved, 2)
    assert official < with_holiday and due == with_holiday
    # the working-day layer stands down on the holiday, in the shift report's roster
    at = datetime.combine(holiday, time(10, 0), TZ)
    resp = await client.get("/api/v1/shift-report", params={"roster": "hall-duty", "at": at.isoformat()},
                            headers=auth())
    assert resp.status == 200 and (await resp.json())["incoming"] is None
    day_before = at - timedelta(days=1)
    if OFFICIAL.is_workday(day_before.date())[0]:
        resp = await client.get("/api/v1/shift-report", params={"roster": "hall-duty", "at": day_before.isoformat()},
                                headers=auth())
        assert (await resp.json())["incoming"]["id"] == "duty-b"
    # and in `hallmon oncall who` on the same config file
    cmd = [sys.executable, "-m", "monitor.cli", "oncall", "who", "-c", str(tmp_path / "hall.yml"),
           "--roster", "hall-duty", "--at", at.isoformat(), "--json"]
    res = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, **TOKENS})
    assert res.returncode == 0, res.stderr
    assert {r["layer"]: r["person"] for r in json.loads(res.stdout)}["desk"] is None


def queue_config(tmp_path, url: str, calendar: str):
    hall = ('sites: [{id: u3a, name: 测试三关大厅, hours: {open: "00:00", close: "23:59"}, '
            f'targets: [{{name: q1, kind: queue.http, url: "{url}"}}]}}]')
    text = org_config("redis://127.0.0.1:1/0").replace("sites: [{id: u3a, name: 测试三关大厅}]", hall) + calendar
    path = tmp_path / "queue.yml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def test_a_config_calendar_decides_whether_the_hall_is_open_for_the_queue_probe(checker, tmp_path):
    queue = await QueueSystem().start()
    try:
        queue.arrive(97)  # congested, if the hall is open
        now = datetime.now(TZ)
        if now.hour == 23 and now.minute >= 58:
            pytest.skip("needs the hall's 00:00-23:59 hours to hold through the check")
        today = now.date()
        working = OFFICIAL.is_workday(today)[0]
        # today flipped by the config: a holiday if it is a working day, a make-up day if not
        flip = calendar_yaml([today], []) if working else calendar_yaml([], [today])
        [plain] = queue_config(tmp_path, queue.url, "").targets
        [flipped] = queue_config(tmp_path, queue.url, flip).targets
        assert flipped.calendar is not None and today in (flipped.calendar.holidays | flipped.calendar.workdays)
        first, second = await checker.check(plain), await checker.check(flipped)
        assert (first.detail["open"], second.detail["open"]) == (working, not working)
        assert ("queue.congested" in first.faults, "queue.congested" in second.faults) == (working, not working)
        # the judgement itself, on a fixed day: the first working day after today
        holiday = next_workday(today)
        [target] = queue_config(tmp_path, queue.url, calendar_yaml([holiday])).targets
        at = datetime.combine(holiday, time(10, 0), TZ)
        assert is_open(target.hours, at, target.timezone) and not is_open(target.hours, at, target.timezone,
                                                                          target.calendar)
    finally:
        await queue.stop()
