"""The pager's inbox: incident events from the stream to the escalation handlers.

Events of one incident are handled in order, incidents side by side; an event is
acknowledged once its handler committed. An event whose handler fails is left pending
and tried again (taken back after ``paging.resend_after``); the incident's later events
go on meanwhile (an acknowledgement or a resolution is never held up by an earlier
event that fails). After ``paging.dead_letter_after`` failures, or at once for an entry
that is no event at all, it goes to the dead-letter stream ``hallmon:events:dead``,
counted in ``hallmon_paging_events_dead_lettered_total`` and logged. Redis trouble is
not the event's fault: it is not counted, the loop waits and reads again.

Every few seconds the stream is trimmed to what every consumer group has read.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter

from monitor.core.clock import Clock
from monitor.core.outage import Outage
from monitor.core.supervise import check_cancelled
from monitor.durable.connection import UNAVAILABLE
from monitor.durable.events import BadEvent, EventConsumer, IncidentEvent, trim_read

log = structlog.get_logger("hallmon.inbox")



class Inbox:
    def __init__(self, consumer: EventConsumer, handle: Callable[[IncidentEvent], Awaitable[None]],
                 dead_after: Callable[[], int], registry: CollectorRegistry, clock: Clock, trim_every: float = 5.0):
        self.consumer, self.handle, self.dead_after, self.clock = consumer, handle, dead_after, clock
        self.trim_every = trim_every
        self.dead = Counter("hallmon_paging_events_dead_lettered_total",
                            "Incident events paging gave up on (hallmon:events:dead).", registry=registry)
        self.redis = Outage("pager_redis", log)

    async def run(self) -> None:
        """Handle events until cancelled (supervised: a failure at start, Redis not up
        yet, raises and the supervisor starts it again)."""
        await self.consumer.ensure_group()
        trimmed = self.clock.time()
        while True:
            check_cancelled()
            try:
                batch = await self.consumer.read(block_ms=500)
            except UNAVAILABLE as err:
                self.redis.failing(err)
                await self.clock.sleep(1.0)
                continue
            self.redis.ok()
            await self.handle_batch(batch)
            if self.clock.time() - trimmed >= self.trim_every:
                trimmed = self.clock.time()
                await self._trim()

    async def _trim(self) -> None:
        try:
            await trim_read(self.consumer.client, self.consumer.stream)
        except UNAVAILABLE as err:  # the next read says whether Redis is failing; this is no reason to stop
            log.debug("event_stream_trim_failed", error=str(err))

    async def handle_batch(self, batch: list[tuple[str, IncidentEvent | BadEvent]]) -> None:
        by_incident: dict[str, list[tuple[str, IncidentEvent]]] = {}
        for entry_id, event in batch:
            if isinstance(event, BadEvent):
                await self._dead_letter(entry_id, event, str(event))
            else:
                by_incident.setdefault(event.id, []).append((entry_id, event))
        await asyncio.gather(*(self._in_order(items) for items in by_incident.values()))

    async def _in_order(self, items: list[tuple[str, IncidentEvent]]) -> None:
        for entry_id, event in items:
            try:
                await self.handle(event)
                await self.consumer.ack(entry_id)
            except UNAVAILABLE as err:
                self.redis.failing(err)
                return  # this and the later events stay pending: taken back, in order
            except Exception as err:  # the event's own failure: counted, and the later events go on
                try:
                    failures = await self.consumer.failed(entry_id)
                    if failures >= self.dead_after():
                        await self._dead_letter(entry_id, event, f"{type(err).__name__}: {err}")
                    else:
                        log.warning("pager_event_failed", kind=event.kind, incident=event.id, failures=failures,
                                    error_class=type(err).__name__, error=str(err), exc_info=err)
                except UNAVAILABLE as redis_err:
                    self.redis.failing(redis_err)
                    return

    async def _dead_letter(self, entry_id: str, event: IncidentEvent | BadEvent, error: str) -> None:
        await self.consumer.dead_letter(entry_id, error)
        self.dead.inc()
        log.error("pager_event_dead_lettered", entry=entry_id, error=error,
                  kind=event.kind if isinstance(event, IncidentEvent) else None,
                  incident=event.id if isinstance(event, IncidentEvent) else None)
