"""Intake: alerts posted to the API, stored durably before the answer, placed in
incidents by a batch consumer.

A request checks its body in full (``service/ingest.py``: anything that would refuse it
answers 400 or 403 before anything is stored), then appends the raw body in ONE command
(XADD) to the stream ``hallmon:intake`` with the request's time, the body's kind
(``list`` or ``webhook``) and the actor. Its 2xx then means "stored" (as PagerDuty's
Events API answers 202): a SIGKILL from then on loses nothing.

Every replica runs ``Intake.run``: one consumer of the group ``routers``. It reads the
stream in batches, parses each body again without the checks it already passed, hands
the whole batch to the router, which coalesces it per incident (one write per incident
per batch, however many requests the batch holds), then acknowledges and deletes the
entries and records each entry's incidents for the request waiting on it (in this
process at once, for a request on another replica under ``intake:done:{entry}`` for a
minute). An entry a killed replica read and never acknowledged is reclaimed after
``claim_idle`` seconds (XAUTOCLAIM); placing an alert twice records nothing the second
time (the merge skips what the incident already holds). An entry that fails alone
with a bug (not a store failure) goes to ``intake:dead`` with its error, so one bad
body cannot wedge the stream.

Hand-written rather than a task queue library: the contract is six Redis stream
commands, and the exactly-once placing comes from the incident merge, not the queue.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

import orjson
import redis.exceptions
import structlog
from redis.asyncio import Redis

from monitor.core.alert import Alert, from_unix
from monitor.core.errors import StoreError
from monitor.core.outage import Outage
from monitor.durable import versions
from monitor.incidents.router import Router

__all__ = ["Intake", "STREAM"]

log = structlog.get_logger("hallmon.intake")

STREAM = "hallmon:intake"
GROUP = "routers"
DEAD = "hallmon:intake:dead"
DONE = "hallmon:intake:done:"
DONE_TTL = 60  # seconds a finished entry's incidents wait for a request on another replica


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    actor: str
    alerts: Sequence[Alert]
    awaited: bool  # a request waits for its incidents (POST /api/v1/alerts)


# (kind, body, the request's time) -> alerts: the API's own parser (service/ingest.py)
Parser = Callable[[str, Any, datetime], Sequence[Alert]]


def parse_entry(entry_id: str, fields: dict[Any, Any], parse: Parser) -> Entry:
    """An entry's alerts, parsed as the request parsed them (same time, so a resolved
    alert gets the same end) without the window the request already checked."""
    get = {_s(k): v for k, v in fields.items()}
    alerts = parse(_s(get["kind"]), orjson.loads(get["body"]), from_unix(float(_s(get["at"]))))
    return Entry(entry_id, _s(get["actor"]), alerts, _s(get.get("wait", "1")) == "1")


class Intake:
    def __init__(self, client: Redis, router: Router, parse: Parser, consumer: str | None = None,
                 claim_idle: float = 5.0, batch_alerts: int = 2000, block_ms: int = 1000, linger: float = 0.05,
                 cap: Callable[[], int | None] = lambda: None, reader: Redis | None = None):
        self.r = client
        # the blocking reads hold a connection up to ``block_ms``: from a pool of their own
        # when given, so that they never take one the requests need
        self.reader = reader or client
        self.router = router
        self.parse = parse
        self.cap = cap  # api.max_new_incidents_per_request of the running config
        self.consumer = consumer or consumer_name()
        self.claim_idle_ms = int(claim_idle * 1000)
        self.batch_alerts = batch_alerts
        self.block_ms = block_ms
        self.linger = linger  # at most this long gathering a batch while entries keep coming
        self._waiters: dict[str, asyncio.Future[list[str]]] = {}
        self._done: OrderedDict[str, list[str]] = OrderedDict()  # finished before anyone waited
        self._claimed_at = float("-inf")
        self._pruned_at = float("-inf")
        self._read_at = float("-inf")  # when a read last returned entries
        self._outgoing: list[tuple[dict[Any, Any], asyncio.Future[str]]] = []
        self._flushes: set[asyncio.Future[None]] = set()

    # ── the request side ─────────────────────────────────────────────────────────
    async def submit(self, raw: bytes, kind: str, actor: str, at: float, wait: bool = True) -> str:
        """Store a checked body; returns its entry id. One XADD: stored, or an error.
        The XADDs of requests arriving together go to Redis in one pipeline (one
        connection, one round trip), not one connection each."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._outgoing.append(({"v": versions.INTAKE, "body": raw, "kind": kind, "actor": actor, "at": repr(at),
                                "wait": "1" if wait else "0"}, fut))
        if len(self._outgoing) == 1:
            asyncio.get_running_loop().call_soon(lambda: self._flushes.add(asyncio.ensure_future(self._flush())))
        return await fut

    async def _flush(self) -> None:
        batch, self._outgoing = self._outgoing, []
        try:
            async with self.r.pipeline(transaction=False) as pipe:
                for fields, _ in batch:
                    pipe.xadd(STREAM, fields)
                ids = await pipe.execute()
        except Exception as err:  # noqa: BLE001 - each waiting request answers with it (StoreError: 503)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(err)
        else:
            for (_, fut), entry_id in zip(batch, ids):
                if not fut.done():
                    fut.set_result(_s(entry_id))
        finally:
            self._flushes.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def wait(self, entry_id: str, timeout: float) -> list[str] | None:
        """The incidents the entry's alerts joined, or None if not placed within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if entry_id in self._done:
                return self._done.pop(entry_id)
            fut = self._waiters.setdefault(entry_id, loop.create_future())
            left = deadline - loop.time()
            try:
                return await asyncio.wait_for(asyncio.shield(fut), max(0.0, min(0.25, left)))
            except TimeoutError:
                pass
            finally:
                if fut.done() or loop.time() >= deadline:
                    self._waiters.pop(entry_id, None)
            try:
                raw = await self.r.get(f"{DONE}{entry_id}")  # placed by another replica
            except StoreError:
                raw = None  # the alerts are stored: at worst the answer is "pending"
            if raw is not None:
                self._waiters.pop(entry_id, None)
                return list(json.loads(raw))
            if loop.time() >= deadline:
                self._waiters.pop(entry_id, None)
                return None

    def _finished(self, entry_id: str, incidents: list[str]) -> None:
        fut = self._waiters.pop(entry_id, None)
        if fut is not None and not fut.done():
            fut.set_result(incidents)
        else:
            self._done[entry_id] = incidents
            while len(self._done) > 10_000:
                self._done.popitem(last=False)

    # ── the consumer side ────────────────────────────────────────────────────────
    async def ensure_group(self) -> None:
        try:
            await self.r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except (redis.exceptions.ResponseError, StoreError) as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def run(self) -> None:
        """Read, place, acknowledge, for ever. A store failure is logged once, when it
        starts and when it ends; this consumer's unacknowledged entries are read again
        first, and the group made again if Redis came back without it."""
        store, fresh = Outage("intake_store", log), True
        while True:
            try:
                if fresh:
                    await self.ensure_group()
                    own: Any = await self.reader.xreadgroup(GROUP, self.consumer, {STREAM: "0"}, count=1000)
                    backlog = [item for _s_, items in own or [] for item in items if item[1]]
                    if backlog:
                        await self.process(backlog)
                    fresh = False
                await self.step()
                store.ok()
            except (StoreError, redis.exceptions.ResponseError) as err:
                fresh = True
                if "NOGROUP" in str(err):
                    continue  # Redis lost the stream (restarted without its data): make it again
                store.failing(err)
                await asyncio.sleep(1.0)

    async def step(self) -> int:
        """One batch: entries a dead consumer left (every ``claim_idle``), else new ones."""
        entries = await self._reclaim()
        if not entries:
            entries = await self._read(self.block_ms)
            # linger while requests keep coming (a burst): they are answered first, and
            # placed together after, in fewer and larger writes. A lone request after a
            # quiet spell (the usual Alertmanager notification) is placed at once.
            now = asyncio.get_running_loop().time()
            coming = len(entries) > 1 or now - self._read_at < self.linger
            if entries:
                self._read_at = now
            lingered = 0.0
            while coming and entries and len(entries) < 1000 and lingered < self.linger:
                await asyncio.sleep(0.005)
                lingered += 0.005
                more = await self._read(None)
                if not more:
                    break
                entries += more
        if entries:
            await self.process(entries)
        return len(entries)

    async def _read(self, block: int | None) -> list[Any]:
        resp: Any = await self.reader.xreadgroup(GROUP, self.consumer, {STREAM: ">"}, count=200, block=block)
        return [item for _s_, items in resp or [] for item in items]

    async def _reclaim(self) -> list[Any]:
        now = asyncio.get_running_loop().time()
        if now - self._claimed_at < self.claim_idle_ms / 2000:
            return []
        self._claimed_at = now
        claimed: Any = await self.r.xautoclaim(STREAM, GROUP, self.consumer, min_idle_time=self.claim_idle_ms,
                                               start_id="0-0", count=200)
        entries = [item for item in claimed[1] if item[1]]
        if entries:
            log.warning("intake_entries_reclaimed", entries=len(entries), consumer=self.consumer)
        elif now - self._pruned_at > 60.0:
            self._pruned_at = now
            await self.prune()
        return entries

    async def prune(self, idle: float = 600.0) -> list[str]:
        """Forget consumers of dead processes (every restart makes a new one) once they
        hold nothing and were idle ``idle`` seconds; returns their names."""
        gone = []
        for c in await self.r.xinfo_consumers(STREAM, GROUP):
            name = _s(c["name"])
            if name != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) >= idle * 1000:
                await self.r.xgroup_delconsumer(STREAM, GROUP, name)
                gone.append(name)
        if gone:
            log.info("intake_consumers_pruned", consumers=len(gone))
        return gone

    async def process(self, raw_entries: list[Any]) -> None:
        """Place a batch (in slices of about ``batch_alerts`` alerts), then acknowledge."""
        parsed: list[Entry] = []
        for entry_id, fields in raw_entries:
            try:
                parsed.append(parse_entry(_s(entry_id), fields, self.parse))
            except Exception as err:  # noqa: BLE001 - a body that passed its request's checks and fails now is a bug
                await self._dead(_s(entry_id), fields, err)
        slice_: list[Entry] = []
        count = 0
        for entry in parsed:
            slice_.append(entry)
            count += len(entry.alerts)
            if count >= self.batch_alerts:
                await self._place(slice_)
                slice_, count = [], 0
        if slice_:
            await self._place(slice_)

    async def _place(self, entries: list[Entry]) -> None:
        try:
            placed = await self.router.place([(e.actor, e.alerts) for e in entries], self.cap())
        except StoreError:
            raise
        except Exception as err:  # noqa: BLE001 - find the entry that fails alone; the others go on
            if len(entries) == 1:
                await self._dead(entries[0].id, {"actor": entries[0].actor}, err)
            else:
                for e in entries:
                    await self._place([e])
            return
        async with self.r.pipeline(transaction=True) as pipe:
            ids = [e.id for e in entries]
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            for e, incidents in zip(entries, placed):
                if e.awaited:
                    pipe.set(f"{DONE}{e.id}", json.dumps(incidents), ex=DONE_TTL)
            await pipe.execute()
        for e, incidents in zip(entries, placed):
            if e.awaited:
                self._finished(e.id, incidents)

    async def _dead(self, entry_id: str, fields: dict[Any, Any], err: Exception) -> None:
        log.error("intake_entry_failed", entry=entry_id, error_class=type(err).__name__, error=str(err)[:300])
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.xadd(DEAD, {**{_s(k): v for k, v in fields.items()}, "entry": entry_id,
                             "error": f"{type(err).__name__}: {err}"[:1000]}, maxlen=10_000, approximate=True)
            pipe.xack(STREAM, GROUP, entry_id)
            pipe.xdel(STREAM, entry_id)
            await pipe.execute()
