"""Pager: incident events in, pages out — to the right people, once, escalating when
nobody acknowledges.

The escalation policy matching the incident's level and category is frozen into the
pager's record of the incident when it opens (an upgrade restarts at the new level's
policy). ``notify`` steps page a roster layer's person on duty, a person, or a channel;
``wait`` steps are durable timers. Acknowledging stops escalation; resolving stops
everything and tells those paged. A reminder before a report is due goes to the first
step's people (the duty chief who owns the report); an overdue report goes one step up.

Exactly once: before a message goes out its key is set to ``sending``, after it
``sent``; a redelivered event or a second replica skips what is marked, and resends
only what was left ``sending`` longer than ``paging.resend_after`` (a process killed
mid-send; its unacknowledged event is taken over after the same time). The incident's
paging state is changed only under WATCH, so an ack never loses to a step in flight.
Maintenance incidents are recorded and held back; drills are marked as drills.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import redis.asyncio as aioredis
import redis.exceptions
import structlog
from prometheus_client import Counter

from monitor.config.model import Config
from monitor.config.paging import PagingConfig, Policy
from monitor.core.errors import StoreError
from monitor.core.supervise import supervise
from monitor.durable import notices
from monitor.durable.events import EventConsumer, IncidentEvent
from monitor.durable.timers import Timers
from monitor.paging.acklink import AckSigner
from monitor.paging.channels import Delivery
from monitor.paging.handoff import render as render_report
from monitor.paging.messages import Message, render
from monitor.paging.rosters import Rosters

log = structlog.get_logger("hallmon.pager")

P = "hallmon:paging:"
# Take a message's mark: absent, or left "sending" longer than the resend time by a
# process that died mid-send. Anything else ("sent", "failed", "held") is final.
_TAKE_MARK = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ts = string.match(cur, '^sending:([%d.]+)$')
  if not ts or tonumber(ARGV[1]) - tonumber(ts) < tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], 'sending:' .. ARGV[1], 'EX', ARGV[3])
return 1
"""
KEEP = 30 * 86400


def select_policy(paging: PagingConfig, level: int, category: str) -> Policy | None:
    for policy in paging.policies:
        if level in policy.match.levels and (not policy.match.categories or category in policy.match.categories):
            return policy
    return None


class Pager:
    def __init__(self, client: aioredis.Redis, config: Callable[[], Config], delivery: Delivery, signer: AckSigner,
                 public_url: str, rosters: Rosters):
        self.r = client
        self._config = config
        self.delivery = delivery
        self.signer = signer
        self.public_url = public_url
        self.rosters = rosters
        self.timers = Timers(client, "hallmon:pagetimers")
        self.resend_after = config().paging.resend_after
        self.consumer = EventConsumer(client, "paging", f"{socket.gethostname()}-{os.getpid()}",
                                      idle=self.resend_after)
        self._tasks: set[asyncio.Task] = set()
        self._take_mark = client.register_script(_TAKE_MARK)

    # ── state ────────────────────────────────────────────────────────────────────
    async def state(self, incident_id: str) -> dict | None:
        raw = await self.r.get(f"{P}{incident_id}")
        return json.loads(raw) if raw else None

    async def update(self, incident_id: str, change: Callable[[dict], None], default: dict | None = None,
                     also: Callable[[aioredis.client.Pipeline], Awaitable[None]] | None = None) -> dict | None:
        """Read-modify-write the incident's paging state under WATCH, so an ack or a
        resolve recorded meanwhile (by an event, or by another replica) is never
        overwritten by an escalation step that was in flight. ``also`` queues further
        writes (a timer) on the same transaction."""
        key = f"{P}{incident_id}"
        async with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None and default is None:
                        await pipe.unwatch()
                        return None
                    state = json.loads(raw) if raw else default
                    change(state)
                    pipe.multi()
                    pipe.set(key, json.dumps(state, ensure_ascii=False), ex=KEEP)
                    if also is not None:
                        await also(pipe)
                    await pipe.execute()
                    return state
                except redis.exceptions.WatchError:
                    continue

    def _freeze(self, inc: dict, gen: int) -> dict:
        policy = select_policy(self._config().paging, inc["level"], inc["category"])
        return {"incident": inc, "gen": gen, "policy": policy.model_dump(mode="json") if policy else None,
                "step": 0, "acked": False, "resolved": False, "paged": [], "last_notify": -1}

    # ── events ───────────────────────────────────────────────────────────────────
    async def handle(self, event: IncidentEvent) -> None:
        inc = event.incident
        state = await self.state(inc["id"])
        if event.kind == "opened":
            if state is None:
                state = self._freeze(inc, 1)
                if not await self.r.set(f"{P}{inc['id']}", json.dumps(state, ensure_ascii=False), nx=True, ex=KEEP):
                    state = await self.state(inc["id"])  # another replica froze it first
            await self.resume(state)
            return
        default = self._freeze(inc, 1)  # for an incident opened before paging was configured
        if event.kind in ("upgraded", "unheld"):
            # a new level (or the end of a maintenance window) walks its policy from the
            # start; an upgrade after an acknowledgement reopens the incident, so the new
            # level's people are paged whoever acknowledged before
            def upgrade(st: dict) -> None:
                if st.get("upgraded_at") == event.at:  # this upgrade redelivered: already frozen
                    return
                fresh = self._freeze(inc, st["gen"] + 1)
                fresh.update(paged=st["paged"], acked=st["acked"] and inc.get("status") == "acknowledged",
                             resolved=st["resolved"], upgraded_at=event.at)
                st.clear()
                st.update(fresh)
            state = await self.update(inc["id"], upgrade, default)
            await self.resume(state)
            return
        flags = {"acknowledged": {"acked": True}, "resolved": {"resolved": True}}.get(event.kind, {})
        state = await self.update(inc["id"], lambda st: st.update(incident=inc, **flags), default)
        if event.kind == "acknowledged":
            log.info("escalation_stopped", incident=inc["id"], by=(inc.get("acknowledged") or {}).get("by"))
        elif event.kind == "resolved":
            for person_id in state["paged"]:
                await self.deliver(state, "resolved", 0, person_id, None)
        elif event.kind in ("reminder", "overdue"):
            steps = self._notify_steps(state)
            if not steps:
                return
            if event.kind == "reminder":
                index = steps[0]
            else:  # an overdue report goes one step above the last one paged
                later = [i for i in steps if i > state["last_notify"]]
                index = later[0] if later else steps[-1]
            for person_id, channel_id in self._recipients(state["policy"]["steps"][index]["notify"]):
                await self.deliver(state, event.kind, index, person_id, channel_id, clock=event.clock)

    def _notify_steps(self, state: dict) -> list[int]:
        policy = state.get("policy")
        return [i for i, s in enumerate(policy["steps"]) if s.get("notify")] if policy else []

    def _recipients(self, notify: dict) -> list[tuple[str | None, str | None]]:
        if notify.get("roster"):
            person = self.rosters.on_duty(notify["roster"], notify["layer"], datetime.now(timezone.utc))
            return [(person.id, None)] if person else []
        if notify.get("person"):
            return [(notify["person"], None)]
        return [(None, notify["channel"])]

    # ── escalation ───────────────────────────────────────────────────────────────
    async def resume(self, state: dict) -> None:
        """After a redelivered event: only a walk that never reached its first wait is
        walked again (its pages are marked, so only unmarked ones go out); once a wait
        is scheduled, its durable timer carries the escalation on, never the event."""
        if state["step"] == 0:
            await self.run(state["incident"]["id"], state["gen"], 0)

    async def run(self, incident_id: str, gen: int, start: int, timer_id: str | None = None) -> None:
        """Walk the policy from ``start`` until a wait step or the end. The progress, the
        next wait's timer and the end of the timer that fired (``timer_id``) commit in
        one transaction."""
        state = await self.state(incident_id)
        if state is None or state["gen"] != gen or state["acked"] or state["resolved"] or not state["policy"]:
            if timer_id:
                await self.timers.done(timer_id)
            return
        steps = state["policy"]["steps"]
        i, wait = start, None
        while i < len(steps):
            if steps[i].get("wait") is not None:
                wait = steps[i]["wait"]
                break
            for person_id, channel_id in self._recipients(steps[i]["notify"]):
                await self.deliver(state, "page", i, person_id, channel_id)
            state["last_notify"] = i
            i += 1
        paged, last = state["paged"], state["last_notify"]

        def progress(st: dict) -> None:
            if st["gen"] == gen:  # an upgrade meanwhile has its own walk
                st.update(step=i + 1 if wait is not None else i, last_notify=max(st["last_notify"], last),
                          paged=st["paged"] + [p for p in paged if p not in st["paged"]])

        async def timers(pipe: aioredis.client.Pipeline) -> None:
            if wait is not None:
                await self.timers.schedule(f"{incident_id}|{gen}|{i + 1}", time.time() + wait,
                                           {"incident": incident_id, "gen": gen, "step": i + 1}, pipe=pipe)
            if timer_id:
                await self.timers.done(timer_id, pipe)
        await self.update(incident_id, progress, also=timers)

    async def on_timer(self, timer_id: str, payload: dict, timers: Timers) -> None:
        """Fire a wait's end without holding up the other due timers (a page may wait for
        its batch window); the claim's lease keeps the timer from firing twice meanwhile,
        and the step's pages are marked if it fires again after a crash."""
        async def fire() -> None:
            try:
                await self.run(payload["incident"], payload["gen"], payload["step"], timer_id)
            except Exception:
                log.exception("escalation_step_failed", timer=timer_id)  # fires again after the lease
        self._spawn(fire())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ── one message, once ────────────────────────────────────────────────────────
    async def take_mark(self, key: str) -> bool:
        """True when this process is to send the message behind ``key`` (atomically: two
        replicas never both take a mark a dead process left behind)."""
        return bool(await self._take_mark(keys=[key], args=[f"{time.time():.3f}", self.resend_after, KEEP]))

    async def deliver(self, state: dict, kind: str, step: int, person_id: str | None, channel_id: str | None,
                      clock: dict | None = None) -> None:
        inc = state["incident"]
        cfg = self._config()
        people = {p.id: p for p in cfg.paging.people}
        person = people.get(person_id) if person_id else None
        channels = [channel_id] if channel_id else list(person.channels) if person else []
        tag = f"{clock['id']}#{clock.get('seq', 1)}" if clock else ""
        for ch in channels:
            key = f"{P}sent:{inc['id']}:{state['gen']}:{step}:{kind}{tag}:{person_id or '-'}:{ch}"
            if not await self.take_mark(key):
                continue  # done, or another replica is on it
            if inc.get("maintenance"):
                await self.r.set(key, "held", ex=KEEP)
                log.info("page_held_maintenance", incident=inc["id"], person=person_id, channel=ch)
                continue
            lang = person.lang if person else cfg.paging.lang
            msg = render(kind, lang, inc, clock=clock, step=step,
                         ack_url=self.signer.url(self.public_url, inc["id"]) if kind != "resolved" else "",
                         site_names={s: site.name for s, (_, site) in cfg.sites.items()},
                         tz=cfg.site_timezone(inc["sites"][0] if inc.get("sites") else ""))
            outcome = await self.delivery.send_batched(ch, msg, person)
            await self.r.set(key, f"{'sent' if outcome != 'failed' else 'failed'}:{outcome}", ex=KEEP)
            log.info("page", incident=inc["id"], kind=kind, step=step, person=person_id, channel=ch, outcome=outcome)
            await notices.publish(self.r, "page_sent", inc["id"], inc.get("units") or (), page=kind, step=step,
                                  person=person_id, person_name=person.name if person else None, channel=ch,
                                  outcome=outcome)
            if person_id and person_id not in state["paged"] and kind == "page":
                state["paged"].append(person_id)

    # ── the loop ─────────────────────────────────────────────────────────────────
    async def consume(self) -> None:
        """Handle paging events until cancelled (supervised: a failure at start, Redis not
        up yet, raises and the supervisor starts it again)."""
        await self.consumer.ensure_group()
        await self.delivery.resume_held()
        failing = False
        while True:
            try:
                batch = await self.consumer.read(block_ms=500)
                failing = False
            except StoreError as err:
                if not failing:
                    log.error("pager_redis_failing", error=str(err))
                    failing = True
                await asyncio.sleep(1.0)
                continue
            by_incident: dict[str, list] = {}
            for entry_id, event in batch:
                by_incident.setdefault(event.incident.get("id", ""), []).append((entry_id, event))
            # incidents side by side (so one person's pages can share a batch), each in order
            await asyncio.gather(*(self._handle_in_order(items) for items in by_incident.values()))

    async def _handle_in_order(self, items: list[tuple[str, IncidentEvent]]) -> None:
        for entry_id, event in items:
            try:
                await self.handle(event)
                await self.consumer.ack(entry_id)
            except Exception:
                log.exception("pager_event_failed", kind=event.kind, incident=event.incident.get("id"))
                return  # this and later events of the incident stay unacknowledged: taken over later, in order

    # ── shift hand-off ───────────────────────────────────────────────────────────
    async def send_handoff(self, roster_id: str, handoff: datetime, report: dict) -> int:
        """Send the hand-off report to the outgoing and incoming duty chiefs, once each."""
        cfg = self._config()
        people = {p.id: p for p in cfg.paging.people}
        sent = 0
        for who in ("outgoing", "incoming"):
            person = people.get((report.get(who) or {}).get("id", ""))
            if person is None:
                continue
            text = render_report(report, person.lang)
            msg = Message(kind="shift", title=text.splitlines()[0], text=text, lang=person.lang,
                          incident={"roster": roster_id, "handoff": handoff.isoformat()})
            for ch in person.channels:
                key = f"{P}shift:{roster_id}:{handoff.isoformat()}:{person.id}:{ch}"
                if await self.take_mark(key):
                    outcome = await self.delivery.send(ch, msg, person)
                    await self.r.set(key, f"sent:{outcome}", ex=KEEP)
                    sent += 1
        return sent

    async def handoffs(self, report_for: Callable[[str, datetime], "asyncio.Future[dict]"]) -> None:
        """At every duty-chief hand-off of every roster, send the shift report. Replicas
        note in Redis that one of them is watching; a hand-off less than an hour ago that
        fell while none was (all down) is sent on start. The marks keep each to once."""
        alive = f"{P}handoffs-alive"
        try:
            seen = float(await self.r.get(alive) or "inf")
        except StoreError:
            seen = float("inf")
        now = datetime.now(timezone.utc)
        for roster in self.rosters.rosters.values():
            start = self.rosters.shift(roster, roster.layers[0], now).start
            if seen < start.timestamp() and now - start < timedelta(hours=1):
                log.info("handoff_missed_while_down", roster=roster.id, handoff=start.isoformat())
                await self._handoff(roster.id, start, now, report_for)
        while self.rosters.rosters:
            try:
                await self.r.set(alive, f"{time.time():.3f}", ex=KEEP)
            except StoreError:
                pass  # the consumer loop reports Redis trouble
            now = datetime.now(timezone.utc)
            when, roster_id = min((self.rosters.shift(r, r.layers[0], now).end, r.id)
                                  for r in self.rosters.rosters.values())
            delay = (when - now).total_seconds() + 1
            if delay > 60:  # wake up every minute to say this replica is watching
                await asyncio.sleep(60)
                continue
            await asyncio.sleep(max(0.0, delay))
            await self._handoff(roster_id, when, when + timedelta(seconds=1), report_for)

    async def _handoff(self, roster_id: str, handoff: datetime, at: datetime, report_for: Callable) -> None:
        try:
            await self.send_handoff(roster_id, handoff, await report_for(roster_id, at))
        except Exception:
            log.exception("handoff_report_failed", roster=roster_id)

    async def run_forever(self, restarts: Counter, report_for: Callable | None = None) -> None:
        """The pager's loops, each supervised: events, wait timers, shift hand-offs."""
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "pager_events": self.consume, "pager_timers": lambda: self.timers.run(self.on_timer)}
        if report_for is not None:
            loops["pager_handoffs"] = lambda: self.handoffs(report_for)
        try:
            await asyncio.gather(*(supervise(name, loop, restarts) for name, loop in loops.items()))
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


def public_base(cfg: Config) -> str:
    return (cfg.service.public_url or f"http://{cfg.service.listen}").rstrip("/")



