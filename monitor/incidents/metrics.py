"""Incident and clock metrics, from Redis, for every replica alike.

A task refreshes a snapshot every few seconds; the collector renders the snapshot, so a
scrape never waits on Redis. Drills are left out: they never reach the statistics.
"""
from __future__ import annotations

import asyncio

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core import workdays
from monitor.core.errors import StoreError
from monitor.incidents.records import Incident
from monitor.incidents.store import IncidentStore

log = structlog.get_logger("hallmon.incident_metrics")


class IncidentCollector(Collector):
    def __init__(self) -> None:
        self.incidents: list[Incident] = []

    async def refresh(self, store: IncidentStore) -> None:
        self.incidents = [i for i in await store.watched() if not i.drill]

    def collect(self):
        open_ = GaugeMetricFamily("hallmon_incidents_open", "Incidents not yet resolved, by level.", labels=["level"])
        counts = {1: 0, 2: 0, 3: 0}
        due = GaugeMetricFamily("hallmon_clock_due_timestamp_seconds", "When a pending report is due.",
                                labels=["incident", "clock", "level"])
        overdue = GaugeMetricFamily("hallmon_clocks_overdue", "Reports past due and not filed, by level.",
                                    labels=["level"])
        late = {1: 0, 2: 0, 3: 0}
        for inc in self.incidents:
            if inc.status != "resolved":
                counts[inc.level] += 1
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
        yield from (open_, due, overdue, estimated)


async def refresh_forever(collector: IncidentCollector, store: IncidentStore, every: float = 2.0) -> None:
    failing = False
    while True:
        try:
            await collector.refresh(store)
            if failing:
                log.info("incident_metrics_recovered")
                failing = False
        except StoreError as err:
            if not failing:
                log.error("incident_metrics_failing", error=str(err))
                failing = True
        await asyncio.sleep(every)
