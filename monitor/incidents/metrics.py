"""Incident and clock metrics, from Redis, for every replica alike.

The collector renders a snapshot, so a scrape never waits on Redis. The snapshot is
kept incrementally: a task subscribes to the store's notices (every incident change
publishes one in its own MULTI), reads every watched incident once, then re-reads only
the incidents notices name, at most every ``coalesce`` seconds (0.2). Notices are best
effort, so the whole set is read again when the subscription is (re)made and every
``resync`` seconds. (0.5 re-read every watched incident every 2 s: 0.4 cores idle with
3,000 open.) Drills are left out: they never reach the statistics.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Iterable

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from monitor.core import workdays
from monitor.core.outage import Outage
from monitor.durable import notices
from monitor.durable.connection import UNAVAILABLE
from monitor.incidents import intake
from monitor.incidents.records import Incident
from monitor.incidents.store import IncidentStore

log = structlog.get_logger("hallmon.incident_metrics")


class IncidentCollector(Collector):
    def __init__(self) -> None:
        self.by_id: dict[str, Incident] = {}
        self.intake: tuple[int, int] = (0, 0)  # entries of the intake stream waiting, dead letters

    async def refresh_intake(self, store: IncidentStore) -> None:
        async with store.r.pipeline(transaction=False) as pipe:
            pipe.xlen(intake.STREAM)
            pipe.xlen(intake.DEAD)
            waiting, dead = await pipe.execute()
        self.intake = (int(waiting), int(dead))

    @property
    def incidents(self) -> list[Incident]:
        return list(self.by_id.values())

    async def refresh(self, store: IncidentStore) -> None:
        """Read every watched incident."""
        self.by_id = {i.id: i for i in await store.watched() if not i.drill}

    async def update(self, store: IncidentStore, ids: Iterable[str]) -> None:
        """Read these incidents again (one MGET): kept while watched, dropped otherwise."""
        for incident_id, inc in (await store.many(ids)).items():
            if inc is None or inc.drill or not inc.live:
                self.by_id.pop(incident_id, None)
            else:
                self.by_id[incident_id] = inc

    def collect(self):
        open_ = GaugeMetricFamily("hallmon_incidents_open", "Incidents not yet resolved, by level.", labels=["level"])
        counts = {1: 0, 2: 0, 3: 0}
        due = GaugeMetricFamily("hallmon_clock_due_timestamp_seconds", "When a pending report is due.",
                                labels=["incident", "clock", "level"])
        overdue = GaugeMetricFamily("hallmon_clocks_overdue", "Reports past due and not filed, by level.",
                                    labels=["level"])
        late = {1: 0, 2: 0, 3: 0}
        since = GaugeMetricFamily("hallmon_incident_open_since_timestamp_seconds",
                                  "When each open incident was first seen (one series per open incident: "
                                  "Grafana lists them and links each to its console page).",
                                  labels=["incident", "level", "category", "status"])
        for inc in self.incidents:
            if inc.status != "resolved":
                counts[inc.level] += 1
                since.add_metric([inc.id, str(inc.level), inc.category, inc.status], inc.detected_at.timestamp())
            for clock in inc.clocks:
                if clock.status == "pending":
                    due.add_metric([inc.id, clock.id, str(inc.level)], clock.due_at.timestamp())
                elif clock.status == "overdue":
                    late[inc.level] += 1
        for level in (1, 2, 3):
            open_.add_metric([str(level)], counts[level])
            overdue.add_metric([str(level)], late[level])
        estimated = CounterMetricFamily("hallmon_calendar_estimates", "Working days guessed as Monday-Friday "
                                        "because the calendar does not know the year.")
        estimated.add_metric([], workdays.estimates)
        waiting = GaugeMetricFamily("hallmon_intake_entries", "Alert requests stored and not yet placed in "
                                    "incidents (the intake stream; one entry per request).")
        waiting.add_metric([], self.intake[0])
        dead = GaugeMetricFamily("hallmon_intake_dead_entries", "Alert requests the intake could not place "
                                 "(hallmon:intake:dead): a bug to report.")
        dead.add_metric([], self.intake[1])
        yield from (open_, since, due, overdue, estimated, waiting, dead)


async def refresh_forever(collector: IncidentCollector, store: IncidentStore, every: float = 2.0,
                          resync: float = 300.0, coalesce: float = 0.2, listen: Redis | None = None) -> None:
    """``listen``: a client whose pool the subscription may hold a connection of for ever
    (not the requests' pool)."""
    redis = Outage("incident_metrics", log)
    while True:
        pubsub = (listen or store.r).pubsub()
        try:
            await pubsub.subscribe(notices.CHANNEL)
            await collector.refresh(store)  # after subscribing: no change falls in between
            full_at = time.monotonic()
            redis.ok()
            while True:
                changed: set[str] = set()
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=every)
                while msg is not None:
                    notice = notices.decode(msg["data"])
                    if notice is not None and notice["kind"] != "page_sent":
                        changed.add(notice["incident"])
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
                await collector.refresh_intake(store)
                if time.monotonic() - full_at > resync:
                    await collector.refresh(store)
                    full_at = time.monotonic()
                elif changed:
                    await collector.update(store, changed)
                    await asyncio.sleep(coalesce)  # a storm's many notices cost a read per ``coalesce``
        except UNAVAILABLE as err:
            redis.failing(err)
            await asyncio.sleep(every)
        finally:
            with contextlib.suppress(*UNAVAILABLE):
                await pubsub.aclose()
