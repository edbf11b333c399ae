"""Incident metrics kept incrementally (issue 12): the watched set is read once, then
only the incidents a notice names; a lost subscription reads the whole set again; a
group's lock lives only while held."""
from __future__ import annotations

import asyncio
import time

import pytest

from monitor.core.alert import Alert
from monitor.incidents.metrics import IncidentCollector, refresh_forever
from tests.routerkit import FakeTime, config_file, replica

pytestmark = pytest.mark.usefixtures("tokens")  # the config's token secrets (tests.routerkit.TOKENS)


async def until(pred, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached in time")


def fault(system: str, t: FakeTime) -> Alert:
    return Alert(labels={"alertname": "Custom", "fault": "custom.fault", "site": "u1a", "unit": "u1",
                         "system": system, "target": f"dev-{system}"}, starts_at=t.now(), source="api")


class Counting:
    """The store, counting whole-set reads and the ids read one by one."""

    def __init__(self, store):
        self.store, self.r = store, store.r
        self.full, self.ids = 0, []

    async def watched(self):
        self.full += 1
        return await self.store.watched()

    async def many(self, ids):
        self.ids += list(ids)
        return await self.store.many(ids)


async def test_metrics_read_only_what_changed_and_everything_after_a_lost_subscription(tmp_path, redis_url):
    cfg = config_file(tmp_path, redis_url)
    rep = replica(cfg, redis_url, FakeTime())
    for i in range(20):
        await rep.router.ingest([fault(f"s{i}", rep.time)])
    store = Counting(rep.router.store)
    collector = IncidentCollector()
    task = asyncio.create_task(refresh_forever(collector, store, every=0.02))  # type: ignore[arg-type]
    try:
        await until(lambda: len(collector.by_id) == 20)
        [new_id] = await rep.router.ingest([fault("s-new", rep.time)])
        await until(lambda: new_id in collector.by_id)
        assert store.full == 1 and set(store.ids) == {new_id}  # one incident read, not 21
        other = sorted(collector.by_id)[0]
        await rep.router.ack(other, "测试值班长甲")
        await until(lambda: collector.by_id[other].status == "acknowledged")
        assert store.full == 1
        # the subscription is cut: notices may have been lost, so the whole set is read again
        await rep.client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await until(lambda: store.full == 2)
        assert {i.id for i in collector.incidents} == {i.id for i in await rep.router.store.watched()}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await rep.close()


async def test_the_lock_of_a_group_lives_only_while_placing(tmp_path, redis_url):
    cfg = config_file(tmp_path, redis_url)
    rep = replica(cfg, redis_url, FakeTime())
    placed = await asyncio.gather(*(rep.router.ingest([fault(f"g{i % 30}", rep.time)]) for i in range(90)))
    assert len({i for ids in placed for i in ids}) == 30
    assert rep.router._locks == {}  # 30 groups placed, no lock kept
    await rep.close()


async def test_intake_backlog_and_dead_letters_are_gauges(tmp_path, redis_url):
    from prometheus_client import CollectorRegistry, generate_latest

    from monitor.incidents.intake import DEAD, STREAM

    cfg = config_file(tmp_path, redis_url)
    rep = replica(cfg, redis_url, FakeTime())
    for _ in range(3):
        await rep.client.xadd(STREAM, {"body": "[]", "kind": "list", "actor": "ops", "at": "0"})
    await rep.client.xadd(DEAD, {"entry": "1-0", "error": "Invalid: x"})
    collector = IncidentCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    task = asyncio.create_task(refresh_forever(collector, rep.router.store, every=0.02))
    try:
        await until(lambda: collector.intake == (3, 1))
        text = generate_latest(registry).decode()
        assert "hallmon_intake_entries 3.0" in text and "hallmon_intake_dead_entries 1.0" in text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await rep.close()


async def test_every_open_incident_has_a_series_for_grafana_even_with_no_report_pending(tmp_path, redis_url):
    """The overview dashboard lists open incidents from hallmon_incident_open_since_timestamp_seconds
    and links each to its console page: one series per open incident, whether or not a report
    is pending (the clock table alone missed those); gone once resolved."""
    cfg = config_file(tmp_path, redis_url)
    rep = replica(cfg, redis_url, FakeTime())
    [inc_id] = await rep.router.ingest([fault("s-open", rep.time)])
    inc = await rep.router.store.get(inc_id)
    for clock in inc.clocks:  # every report filed: nothing pending any more
        await rep.router.file_report(inc_id, clock.id, "测试值班长甲", None, None)
    collector = IncidentCollector()
    task = asyncio.create_task(refresh_forever(collector, rep.router.store, every=0.02))

    def series() -> dict:
        fam = next(f for f in collector.collect() if f.name == "hallmon_incident_open_since_timestamp_seconds")
        return {s.labels["incident"]: (s.labels, s.value) for s in fam.samples}

    def pending() -> list:
        fam = next(f for f in collector.collect() if f.name == "hallmon_clock_due_timestamp_seconds")
        return [s for s in fam.samples if s.labels["incident"] == inc_id]

    try:
        await until(lambda: inc_id in series())
        labels, value = series()[inc_id]
        assert value == inc.detected_at.timestamp() and labels["level"] == str(inc.level)
        assert labels["status"] == "open" and labels["category"] == inc.category
        assert not pending()  # no clock row for it on the dashboard: this series is what lists it
        await rep.router.resolve(inc_id, "测试值班长甲", "恢复")
        await until(lambda: inc_id not in series())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await rep.close()
