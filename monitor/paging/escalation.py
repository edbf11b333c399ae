"""The escalation machine: incident events in, messages queued in the outbox.

The escalation policy matching the incident's level and category is frozen into its
paging state when it opens (``state.py``; an upgrade freezes the new level's policy as
a new generation). ``notify`` steps page a roster layer's person on duty, a person, or
a channel; ``wait`` steps are durable timers. Acknowledging stops escalation; resolving
stops everything and tells those paged. A reminder before a report is due goes to the
first step's people (the duty chief who owns the report); an overdue report goes one
step above the last one paged. Maintenance incidents are recorded and held back.

Each event kind has its handler (``HANDLERS``). A handler writes the state change, the
messages it decided (``outbox.py``) and the next wait's timer in one transaction, so a
process killed at any point leaves either all of it or none, and a redelivered event
adds nothing twice. Who is on duty, and on which channels, is read from the running
config when a step runs: a reload applies to every page not yet decided.
"""
from __future__ import annotations

from typing import Awaitable, Callable

import redis.asyncio as aioredis
import structlog

from monitor.config.model import Config
from monitor.config.paging import NotifyTarget
from monitor.core.clock import Clock
from monitor.durable.events import ClockRef, IncidentEvent
from monitor.durable.timers import Timers
from monitor.paging.outbox import Job, Kind, Outbox
from monitor.paging.rosters import Rosters
from monitor.paging.state import PagingState, PagingStates, freeze

log = structlog.get_logger("hallmon.escalation")

Recipient = tuple[str | None, str | None]  # (person, channel): one of them


class Escalation:
    def __init__(self, client: aioredis.Redis, config: Callable[[], Config], rosters: Callable[[], Rosters],
                 states: PagingStates, outbox: Outbox, clock: Clock):
        self.config, self.rosters, self.states, self.outbox, self.clock = config, rosters, states, outbox, clock
        self.timers = Timers(client, "hallmon:pagetimers", clock=clock)

    async def handle(self, event: IncidentEvent) -> None:
        await HANDLERS[event.kind](self, event)

    def _freeze(self, event: IncidentEvent, gen: int = 1) -> PagingState:
        return freeze(self.config().paging, event.incident, gen)

    # ── the handlers ─────────────────────────────────────────────────────────────
    async def opened(self, event: IncidentEvent) -> None:
        # stored first, read only when it was there already (a redelivered event): one
        # round trip on the way to the first page
        await self.resume(await self.states.create(self._freeze(event)))

    async def upgraded(self, event: IncidentEvent) -> None:
        """A new level, or the end of a maintenance window that held the pages
        (``unheld``): the policy is walked from the start. An upgrade after an
        acknowledgement reopens the incident, so the new level's people are paged
        whoever acknowledged before."""
        def upgrade(st: PagingState) -> PagingState | None:
            if st.upgraded_at == event.at:  # this upgrade redelivered: frozen already
                return None
            return self._freeze(event, st.gen + 1).model_copy(update={
                "paged": st.paged, "acked": st.acked and event.incident.status == "acknowledged",
                "resolved": st.resolved, "upgraded_at": event.at})
        state = await self.states.update(event.id, upgrade, default=self._freeze(event))
        if state is not None:
            await self.resume(state)

    async def acknowledged(self, event: IncidentEvent) -> None:
        await self.states.update(event.id, lambda st: st.model_copy(update={"acked": True, "incident": event.incident}),
                                 default=self._freeze(event))
        log.info("escalation_stopped", incident=event.id, by=event.actor)

    async def resolved(self, event: IncidentEvent) -> None:
        detail = {"by": event.actor, "result": event.detail.get("result", "")}

        async def notices(pipe: aioredis.client.Pipeline, st: PagingState) -> None:
            for person in st.paged:
                for job in self._jobs(st, "resolved", 0, (person, None), detail=detail):
                    await self.outbox.put(pipe, job)
        await self.states.update(
            event.id, lambda st: None if st.resolved else st.model_copy(update={"resolved": True,
                                                                                 "incident": event.incident}),
            default=self._freeze(event), also=notices)
        self.outbox.wake()

    async def reminder(self, event: IncidentEvent) -> None:
        await self._clock_notice(event, "reminder")

    async def overdue(self, event: IncidentEvent) -> None:
        await self._clock_notice(event, "overdue")

    async def recovered(self, event: IncidentEvent) -> None:
        """All alerts ended: escalation goes on until a person acknowledges or resolves."""

    async def _clock_notice(self, event: IncidentEvent, kind: Kind) -> None:
        """A reminder goes to the first notify step's people; an overdue report to the
        step above the last one paged."""
        async def notices(pipe: aioredis.client.Pipeline, st: PagingState) -> None:
            steps = st.notify_steps()
            if not steps or event.clock is None or st.policy is None:
                return
            later = [i for i in steps if i > st.last_notify]
            index = steps[0] if kind == "reminder" else later[0] if later else steps[-1]
            notify = st.policy.steps[index].notify
            assert notify is not None
            for recipient in self._recipients(notify):
                for job in self._jobs(st, kind, index, recipient, clock=event.clock):
                    await self.outbox.put(pipe, job)
        await self.states.update(event.id, lambda st: st.model_copy(update={"incident": event.incident}),
                                 default=self._freeze(event), also=notices)
        self.outbox.wake()

    # ── walking the policy ───────────────────────────────────────────────────────
    async def resume(self, state: PagingState) -> None:
        """After a redelivered event: only a walk that never reached its first wait is
        walked again (its pages are queued once); once a wait is scheduled, its durable
        timer carries the escalation on, never the event."""
        if state.step == 0:
            await self.run(state.incident.id, state.gen, 0, state=state)

    async def run(self, incident_id: str, gen: int, start: int, timer_id: str | None = None,
                  state: PagingState | None = None) -> None:
        """Walk the policy from ``start`` until a wait step or the end. The pages, the
        progress, the next wait's timer and the end of the timer that fired
        (``timer_id``) commit in one transaction. ``state``: as the caller just read it
        (the commit checks under WATCH that it is still the same generation, not stopped)."""
        state = state or await self.states.get(incident_id)
        if state is None or state.gen != gen or state.stopped or state.policy is None:
            if timer_id:
                await self.timers.done(timer_id)
            return
        steps = state.policy.steps
        i, wait, jobs, paged, last = start, None, [], list(state.paged), state.last_notify
        while i < len(steps):
            notify, wait = steps[i].notify, steps[i].wait
            if notify is None:
                break
            for recipient in self._recipients(notify):
                if state.incident.maintenance:
                    log.info("page_held_maintenance", incident=incident_id, step=i, recipient=recipient)
                    continue
                jobs += self._jobs(state, "page", i, recipient)
                if recipient[0] and recipient[0] not in paged:
                    paged.append(recipient[0])
            last, i = i, i + 1
        moved = False

        def progress(st: PagingState) -> PagingState | None:
            nonlocal moved
            if st.gen != gen or st.stopped:  # upgraded (its own walk), acknowledged or resolved meanwhile
                return None
            moved = True
            return st.model_copy(update={"step": i + 1 if wait is not None else i,
                                         "last_notify": max(st.last_notify, last),
                                         "paged": st.paged + tuple(p for p in paged if p not in st.paged)})

        async def effects(pipe: aioredis.client.Pipeline, _st: PagingState) -> None:
            for job in jobs:
                await self.outbox.put(pipe, job)
            if wait is not None:
                await self.timers.schedule(f"{incident_id}|{gen}|{i + 1}", self.clock.time() + wait,
                                           {"incident": incident_id, "gen": gen, "step": i + 1}, pipe=pipe)
            if timer_id:
                await self.timers.done(timer_id, pipe)
        await self.states.update(incident_id, progress, also=effects)
        if not moved and timer_id:
            await self.timers.done(timer_id)
        if jobs and moved:
            self.outbox.wake()

    async def on_timer(self, timer_id: str, payload: dict, _timers: Timers) -> None:
        """A wait ended: walk on from the step after it."""
        await self.run(payload["incident"], payload["gen"], payload["step"], timer_id)

    def _recipients(self, notify: NotifyTarget) -> list[Recipient]:
        if notify.roster is not None and notify.layer is not None:
            try:
                person = self.rosters().on_duty(notify.roster, notify.layer, self.clock.now())
            except (KeyError, StopIteration):
                log.error("roster_layer_unknown", roster=notify.roster, layer=notify.layer)
                return []
            return [(person.id, None)] if person else []
        if notify.person is not None:
            return [(notify.person, None)]
        return [(None, notify.channel)]

    def _jobs(self, state: PagingState, kind: Kind, step: int, recipient: Recipient,
              clock: ClockRef | None = None, detail: dict | None = None) -> list[Job]:
        person_id, channel_id = recipient
        if channel_id is not None:
            channels: list[str] = [channel_id]
        else:
            person = next((p for p in self.config().paging.people if p.id == person_id), None)
            if person is None:
                log.error("person_unknown", person=person_id, incident=state.incident.id)
                return []
            channels = list(person.channels)
        tag = f"{clock.id}#{clock.seq}" if clock else ""
        return [Job(key=f"{state.incident.id}:{state.gen}:{step}:{kind}{tag}:{person_id or '-'}:{ch}", kind=kind,
                    channel=ch, person=person_id, incident=state.incident, step=step, clock=clock,
                    detail=detail or {}, created=self.clock.time())
                for ch in channels]


HANDLERS: dict[str, Callable[[Escalation, IncidentEvent], Awaitable[None]]] = {
    "opened": Escalation.opened, "upgraded": Escalation.upgraded, "acknowledged": Escalation.acknowledged,
    "resolved": Escalation.resolved, "reminder": Escalation.reminder, "overdue": Escalation.overdue,
    "recovered": Escalation.recovered, "unheld": Escalation.upgraded,
}
