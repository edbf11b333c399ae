"""Delivery: jobs from the outbox to the channels, through the stages every channel
needs, apart from the escalation that decided them.

- Lanes: each channel has its own queue and workers (``concurrency``), and each attempt
  its own ``timeout``: a hung receiver delays only its own channel.
- Stale: a page whose incident was acknowledged or resolved meanwhile is cancelled;
  other messages give up after ``paging.give_up_after``.
- Rate limit: past a channel's ``rate_limit`` a message is held for one digest (counted
  and held in Redis, shared by replicas, see ``ratelimit``), never dropped.
- Batch: pages to one person on one channel within ``paging.batch_window`` go as one
  message: the first at once, the ones that follow together at the window's end.
- Retry: a retryable failure (5xx, timeout, refused) is tried again after a backoff
  that doubles up to ``max_backoff``, until it is sent; with a ``fallback`` channel,
  after ``retries`` the fallback takes it (a final failure goes there at once).
  Each attempt's outcome is written with the job's next state in one transaction.

The channels, people and rosters are read from the running config at every attempt,
so a reload applies to every message not yet sent. Every end of a page is told to the
live views as a ``page_sent`` notice (``durable/notices.py``). Metrics:
``hallmon_pages_sent_total{channel,outcome}`` (sent, failed, digested, batched,
cancelled, expired), ``hallmon_page_retries_total{channel}``,
``hallmon_channel_failing{channel}`` (1 while a channel's last attempt failed).
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from monitor.config.model import Config
from monitor.config.paging import Channel, Person
from monitor.core.clock import Clock
from monitor.core.errors import ChannelError
from monitor.core.outage import Outage
from monitor.core.supervise import check_cancelled, stop
from monitor.durable import notices
from monitor.durable.connection import UNAVAILABLE
from monitor.durable.timers import Timers
from monitor.paging.acklink import AckSigner
from monitor.paging.channels import Sender, sender
from monitor.paging.handoff import render as render_report
from monitor.paging.messages import Message, digest, render
from monitor.paging.outbox import BUSY, FINAL, Job, Marks, Outbox
from monitor.paging.ratelimit import SharedWindow
from monitor.paging.state import PagingStates

log = structlog.get_logger("hallmon.delivery")



def idempotency_key(*job_keys: str) -> str:
    return hashlib.sha256("\n".join(job_keys).encode()).hexdigest()[:32]


def public_base(cfg: Config) -> str:
    return (cfg.service.public_url or f"http://{cfg.service.listen}").rstrip("/")


@dataclass
class _Batch:
    last: float = float("-inf")
    held: list[tuple[Job, Message]] = field(default_factory=list)
    flusher: asyncio.Task | None = None


class Delivery:
    def __init__(self, client: aioredis.Redis, config: Callable[[], Config], session: aiohttp.ClientSession,
                 registry: CollectorRegistry, signer: AckSigner, clock: Clock, marks: Marks, outbox: Outbox,
                 states: PagingStates):
        self.r, self.config, self.session, self.signer, self.clock = client, config, session, signer, clock
        self.marks, self.outbox, self.states = marks, outbox, states
        self._senders: dict[str, tuple[Channel, Sender]] = {}
        self._windows: dict[str, tuple[Any, SharedWindow]] = {}
        self._lanes: dict[str, asyncio.Queue[Job]] = {}
        self._workers: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self._flushers: dict[str, asyncio.Task] = {}
        self._batches: dict[tuple[str, str], _Batch] = {}
        self.inflight: set[str] = set()
        self.outages: dict[str, Outage] = {}  # by channel
        self.sent = Counter("hallmon_pages_sent_total", "Messages handed to a channel, by outcome.",
                            ["channel", "outcome"], registry=registry)
        self.retries = Counter("hallmon_page_retries_total", "Failed attempts that will be tried again.",
                               ["channel"], registry=registry)
        self.failing_gauge = Gauge("hallmon_channel_failing", "1 while the channel's last attempt failed.",
                                   ["channel"], registry=registry)

    # ── the running config ───────────────────────────────────────────────────────
    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.config().paging.channels if c.id == channel_id), None)

    def _sender(self, channel: Channel) -> Sender:
        cached = self._senders.get(channel.id)
        if cached is None or cached[0] != channel:  # new, or changed by a reload
            cached = self._senders[channel.id] = (channel, sender(channel, self.session))
        return cached[1]

    def _window(self, channel: Channel) -> SharedWindow | None:
        """The channel's rate limit, counted in Redis: replicas share one robot's allowance."""
        if channel.rate_limit is None:
            return None
        cached = self._windows.get(channel.id)
        if cached is None or cached[0] != channel.rate_limit:
            limit = channel.rate_limit
            cached = self._windows[channel.id] = (limit, SharedWindow(self.r, channel.id, limit.messages, limit.per,
                                                                      clock=self.clock))
        return cached[1]

    # ── from the outbox to a lane ────────────────────────────────────────────────
    async def run(self) -> None:
        """Take due jobs from the outbox and queue each on its channel's lane."""
        await self.resume_held()
        await self.outbox.timers.run(self._dispatch)

    async def _dispatch(self, job_key: str, payload: dict, timers: Timers) -> None:
        if job_key in self.inflight:
            return  # queued here already (the claim only renewed its lease)
        try:
            job = Job.model_validate(payload)
        except ValidationError as err:  # not a job this code can send: dropped, said once
            log.error("page_job_unreadable", key=job_key, error=str(err))
            await timers.done(job_key)
            return
        self.inflight.add(job_key)
        lane = self._lanes.get(job.channel)
        if lane is None:
            lane = self._lanes[job.channel] = asyncio.Queue()
        lane.put_nowait(job)
        channel = self.channel(job.channel)
        if self._workers.get(job.channel, 0) < (channel.concurrency if channel else 1):
            self._workers[job.channel] = self._workers.get(job.channel, 0) + 1
            self._spawn(self._work(job.channel, lane), f"lane:{job.channel}")

    async def _work(self, channel_id: str, lane: asyncio.Queue[Job]) -> None:
        try:
            while True:
                check_cancelled()
                job = await lane.get()
                try:
                    await self.attempt(job)
                except UNAVAILABLE as err:  # the job stays in the outbox: taken again after its lease
                    log.warning("page_attempt_interrupted", channel=channel_id, key=job.key, error=str(err))
                except Exception as err:  # a bug: trying again would fail again
                    log.error("page_attempt_crashed", channel=channel_id, key=job.key,
                              error_class=type(err).__name__, error=str(err), exc_info=err)
                    await self._finish(job, f"failed:{type(err).__name__}", "failed")
                finally:
                    self.inflight.discard(job.key)
        finally:
            self._workers[channel_id] -= 1

    def _spawn(self, coro: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ── one attempt ──────────────────────────────────────────────────────────────
    async def attempt(self, job: Job) -> None:
        cfg = self.config()
        channel = self.channel(job.channel)
        if channel is None:
            log.error("page_channel_unknown", channel=job.channel, key=job.key)
            await self._finish(job, "failed:no such channel", "failed")
            return
        stale = await self._stale(job, cfg)
        if stale:
            await self._finish(job, stale, stale.split(":")[0] if stale.startswith("cancelled") else "expired")
            return
        taken = await self.marks.take(job.key)
        if taken == FINAL:
            await self._finish(job, None)
        if taken in (FINAL, BUSY):
            return
        person = next((p for p in cfg.paging.people if p.id == job.person), None)
        msg = self.render(job, cfg, person)
        window = self._window(channel)
        if window is not None and not await window.admit():
            await window.hold({"title": msg.title, "ack_url": msg.ack_url, "lang": msg.lang, "person": job.person})
            self._start_flusher(channel.id, window)
            await self._finish(job, "sent:digested", "digested")
            return
        if cfg.paging.batch_window > 0 and person is not None and self._batched(job, msg, person, cfg):
            return
        await self._send([job], channel, msg, person)

    async def _stale(self, job: Job, cfg: Config) -> str | None:
        if job.kind == "page" and job.incident is not None:
            state = await self.states.get(job.incident.id)
            if state is not None and state.stopped:
                return "cancelled:resolved" if state.resolved else "cancelled:acknowledged"
        elif job.kind != "page" and self.clock.time() - job.created > cfg.paging.give_up_after:
            log.error("page_given_up", key=job.key, attempts=job.attempts)
            return "failed:expired"
        return None

    def render(self, job: Job, cfg: Config, person: Person | None) -> Message:
        lang = person.lang if person else cfg.paging.lang
        if job.kind == "shift":
            text = render_report(job.report or {}, lang)
            return Message(kind="shift", title=text.splitlines()[0], text=text, lang=lang,
                           incident={"roster": (job.report or {}).get("roster"), "handoff": job.detail.get("handoff")})
        assert job.incident is not None
        inc = job.incident
        ack = ""
        if job.kind != "resolved":
            ack = self.signer.url(public_base(cfg), inc.id, job.person or f"channel:{job.channel}",
                                  now=self.clock.time())
        return render(job.kind, lang, inc, clock=job.clock, step=job.step, ack_url=ack, detail=job.detail,
                      site_names={s: site.name for s, (_, site) in cfg.sites.items()},
                      tz=cfg.site_timezone(inc.sites[0] if inc.sites else ""))

    async def _send(self, jobs: list[Job], channel: Channel, msg: Message, person: Person | None) -> None:
        try:
            try:
                async with asyncio.timeout(channel.timeout + 1.0):
                    await self._sender(channel).send(msg, person, idempotency_key(*(j.key for j in jobs)))
            except TimeoutError as err:
                raise ChannelError(channel.id, "timed out", retryable=True) from err
        except ChannelError as err:
            if self._outage(channel).failing(err, retryable=err.retryable):
                self.failing_gauge.labels(channel.id).set(1)
            for job in jobs:
                await self._failed(job, channel, err)
            return
        if self._outage(channel).ok():
            self.failing_gauge.labels(channel.id).set(0)
        self.sent.labels(channel.id, "sent").inc()
        for job in jobs:
            await self._finish(job, "sent:sent", told="sent")
            log.info("page", incident=job.incident.id if job.incident else None, kind=job.kind, step=job.step,
                     person=job.person, channel=channel.id, attempts=job.attempts + 1)

    def _outage(self, channel: Channel) -> Outage:
        if channel.id not in self.outages:
            self.outages[channel.id] = Outage("channel", log, channel=channel.id)
        return self.outages[channel.id]

    async def _failed(self, job: Job, channel: Channel, err: ChannelError) -> None:
        attempts = job.attempts + 1
        fallback = self.channel(channel.fallback) if channel.fallback else None
        async with self.r.pipeline(transaction=True) as pipe:
            if fallback is not None and job.fallbacks < 3 and (not err.retryable or attempts > channel.retries):
                self.marks.set(pipe, job.key, "failed:fallback")
                self._notice(pipe, job, "fallback")
                await self.outbox.done(pipe, job)
                await self.outbox.put(pipe, job.model_copy(update={
                    "key": f"{job.key}>{fallback.id}", "channel": fallback.id, "attempts": 0}))
                self.sent.labels(channel.id, "failed").inc()
                log.warning("page_fallback", channel=channel.id, fallback=fallback.id, key=job.key, error=str(err))
            elif err.retryable:
                delay = min(channel.backoff * 2 ** (attempts - 1), channel.max_backoff)
                self.marks.set(pipe, job.key, f"retry:{attempts}")
                await self.outbox.again(pipe, job.model_copy(update={"attempts": attempts}),
                                        self.clock.time() + delay)
                self.retries.labels(channel.id).inc()
            else:
                self.marks.set(pipe, job.key, "failed:final")
                await self.outbox.done(pipe, job)
                self._notice(pipe, job, "failed")
                self.sent.labels(channel.id, "failed").inc()
                log.error("page_failed", channel=channel.id, key=job.key, error=str(err))
            await pipe.execute()
        if fallback is not None:
            self.outbox.wake()

    async def _finish(self, job: Job, mark: str | None, outcome: str | None = None, told: str | None = None) -> None:
        """The job's end: its mark, out of the outbox, ``outcome`` counted, and the live
        views told (``told``, default ``outcome``) in a notice."""
        async with self.r.pipeline(transaction=True) as pipe:
            if mark is not None:
                self.marks.set(pipe, job.key, mark)
            await self.outbox.done(pipe, job)
            self._notice(pipe, job, told or outcome)
            await pipe.execute()
        if outcome is not None:
            self.sent.labels(job.channel, outcome).inc()

    def _notice(self, pipe: aioredis.client.Pipeline, job: Job, outcome: str | None) -> None:
        if outcome is None or job.incident is None:
            return
        person = next((p for p in self.config().paging.people if p.id == job.person), None)
        notices.publish(pipe, "page_sent", job.incident.id, job.incident.units, page=job.kind, step=job.step,
                        person=job.person, person_name=person.name if person else None, channel=job.channel,
                        outcome=outcome)

    # ── batches: one person, one channel, one window ─────────────────────────────
    def _batched(self, job: Job, msg: Message, person: Person, cfg: Config) -> bool:
        """True when the message is held for the batch that is gathering."""
        batch = self._batches.setdefault((person.id, job.channel), _Batch())
        now = self.clock.time()
        if not batch.held and now - batch.last >= cfg.paging.batch_window:
            batch.last = now
            return False
        batch.held.append((job, msg))
        if batch.flusher is None or batch.flusher.done():
            batch.flusher = self._spawn(self._flush_batch(person, job.channel, batch), "batch")
        return True

    async def _flush_batch(self, person: Person, channel_id: str, batch: _Batch) -> None:
        await self.clock.sleep(batch.last + self.config().paging.batch_window - self.clock.time())
        held, batch.held = batch.held, []
        batch.last = self.clock.time()
        channel = self.channel(channel_id)
        if channel is None:  # removed by a reload meanwhile: taken again after the lease, and failed then
            return
        msg = held[0][1] if len(held) == 1 else digest([m for _, m in held], person.lang)
        await self._send([j for j, _ in held], channel, msg, person)
        if len(held) > 1:
            log.info("pages_batched", channel=channel_id, person=person.id, count=len(held))
            self.sent.labels(channel_id, "batched").inc(len(held))

    # ── rate-limit digests ───────────────────────────────────────────────────────
    def _start_flusher(self, channel_id: str, window: SharedWindow) -> None:
        task = self._flushers.get(channel_id)
        if task is None or task.done():
            self._flushers[channel_id] = self._spawn(self._flush_held(channel_id, window), "digest")

    async def resume_held(self) -> None:
        """Flush digests that a process which stopped (or died) left held."""
        for channel in self.config().paging.channels:
            window = self._window(channel)
            if window is not None and await window.has_held():
                self._start_flusher(channel.id, window)

    async def _flush_held(self, channel_id: str, window: SharedWindow) -> None:
        while await window.has_held():
            check_cancelled()
            await self.clock.sleep(await window.wait() + 0.01)
            if not await window.lock():  # another replica is flushing this channel
                await self.clock.sleep(0.2)
                continue
            try:
                channel = self.channel(channel_id)
                if channel is None or not await window.admit():
                    continue
                batch = await window.take()
                if not batch:
                    continue
                lang = batch[0]["lang"]
                msg = digest([Message(kind="page", title=b["title"], text="", ack_url=b["ack_url"], lang=lang)
                              for b in batch], lang)
                person = next((p for p in self.config().paging.people if p.id == batch[0]["person"]), None)
                try:
                    await self._sender(channel).send(msg, person, idempotency_key(*(b["ack_url"] for b in batch)))
                except ChannelError as err:
                    log.error("digest_send_failed", channel=channel_id, error=str(err), held=len(batch))
                    self.sent.labels(channel_id, "failed").inc()
                    if err.retryable:  # kept, and tried again
                        await self.clock.sleep(channel.backoff)
                        continue
                else:
                    self.sent.labels(channel_id, "sent").inc()
                await window.taken(len(batch))
            finally:
                await window.unlock()

    async def close(self) -> None:
        await stop(list(self._tasks))
