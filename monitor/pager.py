"""Pager: incident events in, pages out — to the right people, once, escalating when
nobody acknowledges.

The escalation policy matching the incident's level and category is frozen into the
pager's record of the incident when it opens (an upgrade restarts at the new level's
policy). ``notify`` steps page a roster layer's person on duty, a person, or a channel;
``wait`` steps are durable timers. Acknowledging stops escalation; resolving stops
everything and tells those paged. A reminder before a report is due goes to the first
step's people (the duty chief who owns the report); an overdue report goes one step up.

Exactly once: before a message goes out its key is set (NX) to ``sending``, after it
``sent``; a redelivered event or a second replica skips what is marked, and resends
only what was left ``sending`` longer than a lease (a process killed mid-send).
Maintenance incidents are recorded and held back; drills are marked as drills.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import redis.asyncio as aioredis
import redis.exceptions
import structlog

from .acklink import AckSigner
from .channels import Delivery
from .config import Config
from .events import EventConsumer, IncidentEvent
from .messages import render
from .paging_config import PagingConfig, Policy
from .rosters import Rosters
from .timers import Timers

log = structlog.get_logger("hallmon.pager")

P = "hallmon:paging:"
SENDING_LEASE = 30.0
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
        self.consumer = EventConsumer(client, "paging", f"{socket.gethostname()}-{os.getpid()}")

    # ── state ────────────────────────────────────────────────────────────────────
    async def state(self, incident_id: str) -> dict | None:
        raw = await self.r.get(f"{P}{incident_id}")
        return json.loads(raw) if raw else None

    async def save(self, state: dict) -> None:
        await self.r.set(f"{P}{state['incident']['id']}", json.dumps(state, ensure_ascii=False), ex=KEEP)

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
            await self.run(inc["id"], state["gen"], state["step"])
            return
        if state is None:  # an incident opened before paging was configured
            state = self._freeze(inc, 1)
        state["incident"] = inc
        if event.kind == "upgraded":
            fresh = self._freeze(inc, state["gen"] + 1)
            fresh["paged"], fresh["acked"] = state["paged"], state["acked"]
            await self.save(fresh)
            await self.run(inc["id"], fresh["gen"], 0)
        elif event.kind == "acknowledged":
            state["acked"] = True
            await self.save(state)
            log.info("escalation_stopped", incident=inc["id"], by=(inc.get("acknowledged") or {}).get("by"))
        elif event.kind == "resolved":
            state["resolved"] = True
            await self.save(state)
            for person_id in state["paged"]:
                await self.deliver(state, "resolved", 0, person_id, None)
        elif event.kind in ("reminder", "overdue"):
            await self.save(state)
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
    async def run(self, incident_id: str, gen: int, start: int) -> None:
        """Walk the policy from ``start`` until a wait step or the end."""
        state = await self.state(incident_id)
        if state is None or state["gen"] != gen or state["acked"] or state["resolved"] or not state["policy"]:
            return
        steps = state["policy"]["steps"]
        i = start
        while i < len(steps):
            step = steps[i]
            if step.get("wait") is not None:
                state["step"] = i + 1
                await self.save(state)
                await self.timers.schedule(f"{incident_id}|{gen}|{i + 1}", time.time() + step["wait"],
                                           {"incident": incident_id, "gen": gen, "step": i + 1})
                return
            for person_id, channel_id in self._recipients(step["notify"]):
                await self.deliver(state, "page", i, person_id, channel_id)
            state["last_notify"] = i
            i += 1
        state["step"] = i
        await self.save(state)

    async def on_timer(self, timer_id: str, payload: dict, timers: Timers) -> None:
        await self.run(payload["incident"], payload["gen"], payload["step"])
        await timers.done(timer_id)

    # ── one message, once ────────────────────────────────────────────────────────
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
            mark = f"sending:{time.time():.3f}"
            if not await self.r.set(key, mark, nx=True, ex=KEEP):
                current = await self.r.get(key) or ""
                if current.startswith("sent") or current.startswith("held") or \
                        time.time() - float(current.split(":")[1]) < SENDING_LEASE:
                    continue  # done, or another replica is on it
                await self.r.set(key, mark, ex=KEEP)  # left "sending" by a process that died: resend
            if inc.get("maintenance"):
                await self.r.set(key, "held", ex=KEEP)
                log.info("page_held_maintenance", incident=inc["id"], person=person_id, channel=ch)
                continue
            lang = person.lang if person else cfg.paging.lang
            msg = render(kind, lang, inc, clock=clock, step=step,
                         ack_url=self.signer.url(self.public_url, inc["id"]) if kind != "resolved" else "",
                         site_names={s: site.name for s, (_, site) in cfg.sites.items()},
                         tz=cfg.site_timezone(inc["sites"][0] if inc.get("sites") else ""))
            outcome = await self.delivery.page(ch, msg, person)
            await self.r.set(key, f"{'sent' if outcome != 'failed' else 'failed'}:{outcome}", ex=KEEP)
            log.info("page", incident=inc["id"], kind=kind, step=step, person=person_id, channel=ch, outcome=outcome)
            if person_id and person_id not in state["paged"] and kind == "page":
                state["paged"].append(person_id)

    # ── the loop ─────────────────────────────────────────────────────────────────
    async def consume(self) -> None:
        await self.consumer.ensure_group()
        failing = False
        while True:
            try:
                batch = await self.consumer.read(block_ms=500)
                failing = False
            except (redis.exceptions.RedisError, OSError) as err:
                if not failing:
                    log.error("pager_redis_failing", error=str(err))
                    failing = True
                await asyncio.sleep(1.0)
                continue
            for entry_id, event in batch:
                try:
                    await self.handle(event)
                except Exception:
                    log.exception("pager_event_failed", kind=event.kind, incident=event.incident.get("id"))
                    continue  # left unacknowledged: another consumer takes it over later
                await self.consumer.ack(entry_id)

    # ── shift hand-off ───────────────────────────────────────────────────────────
    async def send_handoff(self, roster_id: str, handoff: datetime, report: dict) -> int:
        """Send the hand-off report to the outgoing and incoming duty chiefs, once each."""
        from .messages import Message
        from .shiftreport import render as render_report

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
                if await self.r.set(key, "sending", nx=True, ex=KEEP):
                    outcome = await self.delivery.send(ch, msg, person)
                    await self.r.set(key, f"sent:{outcome}", ex=KEEP)
                    sent += 1
        return sent

    async def handoffs(self, report_for: Callable[[str, datetime], "asyncio.Future[dict]"]) -> None:
        """At every duty-chief hand-off of every roster, send the shift report."""
        while True:
            now = datetime.now(timezone.utc)
            upcoming = []
            for roster in self.rosters.rosters.values():
                shift = self.rosters.shift(roster, roster.layers[0], now)
                upcoming.append((shift.end, roster.id))
            if not upcoming:
                return
            when, roster_id = min(upcoming)
            await asyncio.sleep(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()) + 1)
            try:
                await self.send_handoff(roster_id, when, await report_for(roster_id, when + timedelta(seconds=1)))
            except Exception:
                log.exception("handoff_report_failed", roster=roster_id)

    async def run_forever(self, report_for: Callable | None = None) -> None:
        tasks = [self.consume(), self.timers.run(self.on_timer)]
        if report_for is not None:
            tasks.append(self.handoffs(report_for))
        await asyncio.gather(*tasks)


def public_base(cfg: Config) -> str:
    return (cfg.service.public_url or f"http://{cfg.service.listen}").rstrip("/")



