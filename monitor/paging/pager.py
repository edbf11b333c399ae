"""Pager: incident events in, pages out — to the right people, once, escalating when
nobody acknowledges. The parts, each in its module:

- ``inbox``: events from the stream to the handlers, in order per incident, failing
  ones retried and then dead-lettered, the stream trimmed to what was read;
- ``escalation``: one handler per event kind, the frozen policy walked (``state``);
- ``outbox``: the messages decided, durable until sent, and the exactly-once marks;
- ``delivery``: lanes per channel, retries, fallback, rate limits, batches (``channels``
  speak each channel's protocol);
- ``handoff``: the shift report at every hand-off.

Exactly once: a message is decided once (in the transaction of the step that decides
it), marked ``sending`` before it goes and ``sent`` after; a redelivered event or a
second replica adds and sends nothing twice; a message left ``sending`` longer than
``paging.resend_after`` (its process died mid-send) is sent again, once.

People, channels and rosters come from the running config whenever they are used, so a
reload (SIGHUP) applies to every page not yet sent; an incident in flight keeps the
policy frozen into it. ``paging.resend_after`` is read at start.
"""
from __future__ import annotations

import asyncio
import os
import socket
from datetime import datetime
from typing import Awaitable, Callable

import aiohttp
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter

from monitor.config.model import Config
from monitor.config.paging import PagingConfig
from monitor.core.clock import SYSTEM, Clock
from monitor.core.supervise import supervise
from monitor.core.workdays import WorkCalendar
from monitor.durable.events import EventConsumer
from monitor.paging.acklink import AckSigner
from monitor.paging.delivery import Delivery
from monitor.paging.escalation import Escalation
from monitor.paging.handoff import Handoffs
from monitor.paging.inbox import Inbox
from monitor.paging.outbox import Marks, Outbox
from monitor.paging.rosters import Rosters
from monitor.paging.state import PagingStates


class Pager:
    def __init__(self, client: aioredis.Redis, config: Callable[[], Config], session: aiohttp.ClientSession,
                 registry: CollectorRegistry, signer: AckSigner, calendar: WorkCalendar | None = None,
                 clock: Clock = SYSTEM, consumer: str | None = None):
        paging = config().paging
        self.config, self.clock, self._calendar = config, clock, calendar
        self._rosters: tuple[PagingConfig, Rosters] | None = None
        self.states = PagingStates(client)
        self.marks = Marks(client, clock, paging.resend_after)
        self.outbox = Outbox(client, clock, lease=paging.resend_after)
        self.delivery = Delivery(client, config, session, registry, signer, clock, self.marks, self.outbox,
                                 self.states)
        self.escalation = Escalation(client, config, self.rosters, self.states, self.outbox, clock)
        events = EventConsumer(client, "paging", consumer or f"{socket.gethostname()}-{os.getpid()}",
                               idle=paging.resend_after)
        self.inbox = Inbox(events, self.escalation.handle, lambda: self.config().paging.dead_letter_after,
                           registry, clock)
        self.handoffs = Handoffs(client, config, self.rosters, self.outbox, self.marks, clock)

    def rosters(self) -> Rosters:
        """The rosters of the running config (rebuilt after a reload)."""
        paging = self.config().paging
        if self._rosters is None or self._rosters[0] is not paging:
            self._rosters = (paging, Rosters(paging, self._calendar))
        return self._rosters[1]

    async def run_forever(self, restarts: Counter,
                          report_for: Callable[[str, datetime], Awaitable[dict]] | None = None) -> None:
        """The pager's loops, each supervised: events, wait timers, the outbox, hand-offs."""
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "pager_events": self.inbox.run,
            "pager_timers": lambda: self.escalation.timers.run(self.escalation.on_timer),
            "pager_outbox": self.delivery.run}
        if report_for is not None:
            loops["pager_handoffs"] = lambda: self.handoffs.run(report_for)
        await asyncio.gather(*(supervise(name, loop, restarts) for name, loop in loops.items()))

    async def close(self) -> None:
        await self.delivery.close()
