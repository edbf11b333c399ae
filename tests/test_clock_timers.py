"""Clock timers on injected time (no real sleeps): reminders and overdue fire once
across replicas and re-runs; a recurring clock missed for days makes one overdue and
jumps to its next due time, on every built-in plan."""
from datetime import datetime, timedelta, timezone

import pytest

from monitor.incidents.store import P
from monitor.plans.model import builtin_ids, load_plan
from monitor.service.ingest import parse_list
from tests.routerkit import QUICK_PLAN, FakeTime, alert, config_file, replica, stream_events

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


async def test_due_clock_fires_once_across_two_replicas(tmp_path, redis_url):
    plan = tmp_path / "quick.yml"
    plan.write_text(QUICK_PLAN)
    cfg = config_file(tmp_path, redis_url, plan=str(plan))
    time = FakeTime()
    a, b = replica(cfg, redis_url, time), replica(cfg, redis_url, time)
    try:
        [inc_id] = await a.router.ingest(parse_list([alert("power.on_battery", "u3a", "u3", starts=time.now())]))
        assert await a.fire_due() + await b.fire_due() == 0  # nothing due yet
        time.advance(seconds=2)  # the reminder's time (due - 1 s)
        assert await b.fire_due() == 1 and await a.fire_due() == 0
        time.advance(seconds=1)  # due
        assert await a.fire_due() == 1 and await b.fire_due() == 0
        inc = await b.router.store.require(inc_id)
        clock = inc.clock("quick-report")
        assert clock is not None and clock.status == "overdue" and clock.reminded
        overdue = [e for e in await b.router.store.timeline(inc_id) if e.action == "overdue"]
        assert len(overdue) == 1 and overdue[0].at == clock.due_at  # stamped on the (fake) due time
        kinds = [k for k, _ in stream_events(redis_url, inc_id)]
        assert kinds.count("reminder") == 1 and kinds.count("overdue") == 1
        # the timers are gone: a replica restarting later finds nothing to fire
        time.advance(hours=1)
        assert await a.fire_due() + await b.fire_due() == 0 and await a.timers.pending() == 0
        # filing late still records the report, marked late
        inc = await a.router.file_report(inc_id, "quick-report", "测试值班长甲", None, None)
        filed = inc.clock("quick-report")
        assert filed is not None and filed.status == "met" and filed.filed and filed.filed.late is True
    finally:
        await a.close()
        await b.close()


async def test_a_reminder_reclaimed_after_its_lease_is_not_sent_twice(tmp_path, redis_url):
    cfg = config_file(tmp_path, redis_url, plan="putian-tax")
    time = FakeTime()
    a = replica(cfg, redis_url, time)
    try:
        [inc_id] = await a.router.ingest(parse_list([alert("power.on_battery", "u3a", "u3", starts=time.now())]))
        time.advance(minutes=56)  # progress (every 1h) reminds 5 min before
        claimed = await a.timers.claim(now=time.now().timestamp())
        assert [p["what"] for _, p in claimed] == ["remind"]
        for timer_id, payload in claimed * 2:  # handled twice, as after a lease expiry
            await a.router.clock_timer(timer_id, payload, a.timers)
        assert [k for k, _ in stream_events(redis_url, inc_id)].count("reminder") == 1
    finally:
        await a.close()


def _recurring_levels(plan_id: str) -> set[int]:
    return {lv for c in load_plan(plan_id).clocks if c.parsed_due()[0] == "every" for lv in c.levels}


@pytest.mark.parametrize("plan", builtin_ids())
async def test_a_clock_missed_for_days_fires_one_overdue_and_jumps_ahead(tmp_path, redis_url, plan):
    """Issue 12: an alert whose startsAt is 3 days old replayed every missed hourly
    progress report (147 pages in 20 s). Now: one overdue per clock, the next occurrence
    due in the future."""
    cfg = config_file(tmp_path, redis_url, plan=plan)
    time = FakeTime(datetime(2026, 11, 27, 2, 30, 15, tzinfo=timezone.utc))
    started = time.now() - timedelta(days=3, minutes=7)
    a = replica(cfg, redis_url, time)
    try:
        [inc_id] = await a.router.ingest(parse_list([alert("system.down", "hqa", "hq", starts=started)]))
        opened = await a.router.store.require(inc_id)
        await a.fire_due()
        inc = await a.router.store.require(inc_id)
        events = stream_events(redis_url, inc_id)
        overdue = [body["clock"]["id"].split("#")[0] for kind, body in events if kind == "overdue"]
        assert len(overdue) == len(set(overdue)), overdue  # never twice for one clock
        assert all(c.due_at > time.now() for c in inc.clocks if c.status == "pending")
        recurring = [c for c in opened.clocks if c.every_seconds]
        assert bool(recurring) == (opened.level in _recurring_levels(plan))
        for clock in recurring:  # the default, putian-tax… progress reports
            assert overdue.count(clock.id) == 1
            [missed] = [c for c in inc.clocks if c.id == f"{clock.id}#1"]
            [following] = [c for c in inc.clocks if c.id == clock.id]
            assert missed.status == "overdue" and following.seq == 2
            assert time.now() < following.due_at <= time.now() + timedelta(seconds=clock.every_seconds)
            assert (following.due_at - clock.due_at).total_seconds() % clock.every_seconds == 0
            [entry] = [e for e in await a.router.store.timeline(inc_id)
                       if e.action == "overdue" and e.detail["clock"] == missed.id]
            assert entry.detail["intervals_missed"] == 72
        # an hour on, the next one is missed once more: one more overdue, not a replay
        time.advance(hours=1)
        await a.fire_due()
        later = [body["clock"]["id"].split("#")[0] for kind, body in stream_events(redis_url, inc_id)
                 if kind == "overdue"]
        assert sorted(later) == sorted(overdue + [c.id for c in recurring])
    finally:
        await a.close()


async def test_filing_a_progress_report_early_moves_the_next_one_interval_on(tmp_path, redis_url):
    cfg = config_file(tmp_path, redis_url, plan="putian-tax")
    time = FakeTime()
    a = replica(cfg, redis_url, time)
    try:
        [inc_id] = await a.router.ingest(parse_list([alert("power.on_battery", "u3a", "u3", starts=time.now())]))
        first = (await a.router.store.require(inc_id)).clock("progress")
        assert first is not None
        time.advance(minutes=50)
        inc = await a.router.file_report(inc_id, "progress", "测试值班长甲", None, "已续报")
        nxt = inc.clock("progress")
        assert nxt is not None and nxt.seq == 2 and nxt.status == "pending"
        assert nxt.due_at == first.due_at + timedelta(hours=1)
        assert [(r.clock, r.seq, r.late) for r in inc.reports] == [("progress", 1, False)]
        due = await a.client.zscore("hallmon:clocktimers:due", f"{inc_id}|progress|due")
        assert due == nxt.due_at.timestamp()
        assert await a.client.exists(f"{P}incident:{inc_id}")
    finally:
        await a.close()


async def test_progress_reports_end_with_the_incident(tmp_path, redis_url):
    """Regression (0.5): resolving dropped the pending progress clock and then added it
    again (the level still asked for it), so a resolved incident kept reminding."""
    cfg = config_file(tmp_path, redis_url, plan="putian-tax")
    time = FakeTime()
    a = replica(cfg, redis_url, time)
    try:
        [inc_id] = await a.router.ingest(parse_list([alert("power.on_battery", "u3a", "u3", starts=time.now())]))
        time.advance(minutes=20)
        inc = await a.router.resolve(inc_id, "测试值班长甲", "已恢复")
        assert [c.id for c in inc.clocks if c.status == "pending"] == ["complete-report"]
        before = len(stream_events(redis_url, inc_id))
        time.advance(days=2)  # past every hour's progress time and the complete report's day
        await a.fire_due()
        # caught up two days late: the overdue notice, and no reminder of a time already past
        assert [k for k, b in stream_events(redis_url, inc_id)[before:]] == ["overdue"]
        assert {b["clock"]["id"] for _, b in stream_events(redis_url, inc_id)[before:]} == {"complete-report"}
    finally:
        await a.close()


@pytest.mark.parametrize("plan", builtin_ids())
async def test_an_alert_1h59m_late_makes_one_overdue_not_a_second_seconds_later(tmp_path, redis_url, plan):
    """The known gap of issue 13 (``hallmon demo``): an alert whose startsAt is 2 h old on
    an hourly clock made continuous-update#1 overdue at once and #2 overdue 6 s later, two
    overdue pages for one late alert. The next occurrence leaves at least half an interval
    to report in; on Guizhou the time-span upgrade at 2 h then withdraws it unmissed."""
    cfg = config_file(tmp_path, redis_url, plan=plan)
    time = FakeTime(datetime(2026, 11, 27, 2, 30, 15, tzinfo=timezone.utc))
    started = time.now() - timedelta(hours=2) + timedelta(seconds=6)
    a = replica(cfg, redis_url, time)
    try:
        [inc_id] = await a.router.ingest(parse_list([alert("queue.down", "u1a", "u1", starts=started)]))
        opened = await a.router.store.require(inc_id)
        await a.fire_due()
        recurring = [c for c in opened.clocks if c.every_seconds]
        for clock in recurring:
            following = (await a.router.store.require(inc_id)).clock(clock.id)
            assert following is not None and following.seq == 2
            assert following.due_at == started + timedelta(hours=3)  # not started + 2 h, 6 s away
        time.advance(seconds=7)  # Guizhou: the time-span rule comes true here
        await a.fire_due()
        ids = {c.id for c in recurring}
        overdue = [body["clock"]["id"] for kind, body in stream_events(redis_url, inc_id)
                   if kind == "overdue" and body["clock"]["id"].split("#")[0] in ids]
        assert overdue == [f"{c.id}#1" for c in recurring]
        inc = await a.router.store.require(inc_id)
        if plan == "guizhou-tax":
            assert recurring and inc.level == 2
            withdrawn = inc.clock("continuous-update")
            assert withdrawn is not None and withdrawn.status == "withdrawn" and withdrawn.seq == 2
    finally:
        await a.close()
