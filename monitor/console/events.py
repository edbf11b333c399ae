"""``GET /api/v1/events``: server-sent events for the console.

One hub per process subscribes to the store's and the pager's notices
(monitor/durable/notices.py) and fans them out to every connected stream, each filtered
by its token's units. An incident notice is answered with the incident as it is now,
read once per batch however many streams are open; a page notice is passed on as is.
Events: ``incident_opened``, ``incident_changed``, ``incident_resolved``,
``clock_reminder``, ``clock_overdue``, ``page_sent``; ``ready`` when a stream starts and
``resync`` after the hub lost Redis for a while (the page then reloads what it shows).
A client too slow to read its queue is closed rather than buffered without bound.
"""
from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

import structlog
from aiohttp import web

from monitor.core.errors import StoreError
from monitor.core.outage import Outage
from monitor.core.supervise import check_cancelled, stop, supervise
from monitor.durable import notices
from monitor.durable.connection import CONNECTION_FAILURES, translate
from monitor.incidents.records import Incident
from monitor.service import keys
from monitor.service.access import Caller, caller

log = structlog.get_logger("hallmon.console.events")
routes = web.RouteTableDef()

HEARTBEAT = 20.0  # seconds between keep-alive comments on an idle stream
QUEUE = 1000  # events waiting for one stream before it is closed as too slow


def frame(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


class Stream:
    def __init__(self, who: Caller):
        self.who = who
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)

    def sees_units(self, units: list[str]) -> bool:
        return self.who.units is None or bool(self.who.units & set(units))

    def put(self, chunk: bytes | None) -> bool:
        try:
            self.queue.put_nowait(chunk)
            return True
        except asyncio.QueueFull:
            return False


class Hub:
    def __init__(self, app: web.Application):
        self.app = app
        self.streams: set[Stream] = set()
        self.subscribed_once = False
        self.redis = Outage("console_events_redis", log)

    def join(self, who: Caller) -> Stream:
        stream = Stream(who)
        self.streams.add(stream)
        return stream

    def leave(self, stream: Stream) -> None:
        self.streams.discard(stream)

    def close_all(self) -> None:
        for stream in list(self.streams):
            stream.put(None)

    def _send(self, stream: Stream, chunk: bytes) -> None:
        if not stream.put(chunk):
            log.warning("event_stream_too_slow", dropped=stream.queue.qsize())
            self.streams.discard(stream)
            stream.queue = asyncio.Queue(1)
            stream.put(None)

    async def run(self) -> None:
        """Subscribe and dispatch until cancelled. Redis away is said once and retried
        every second (a pub/sub connection is not the wrapped client's, so its failures
        are translated here, at this boundary); anything else goes to the supervisor."""
        while True:
            try:
                await self._listen()
            except (*CONNECTION_FAILURES, StoreError) as err:  # StoreBusy: no pooled connection came free
                self.redis.failing(err if isinstance(err, StoreError) else translate(err))
                await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        pubsub = self.app[keys.REDIS].pubsub()
        try:
            await pubsub.subscribe(notices.CHANNEL)
            if self.subscribed_once:  # notices were lost while away: every page reloads
                for stream in list(self.streams):
                    self._send(stream, frame("resync", {}))
            self.subscribed_once = True
            self.redis.ok()
            while True:
                check_cancelled()
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=10.0)
                if msg is None:
                    continue
                batch = [msg]
                while len(batch) < 500:  # a burst: everything already here goes in one batch
                    more = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
                    if more is None:
                        break
                    batch.append(more)
                await self.dispatch([n for n in (notices.decode(m["data"]) for m in batch) if n])
        finally:
            await pubsub.aclose()

    async def dispatch(self, batch: list[dict]) -> None:
        if not self.streams or not batch:
            return
        pages = [n for n in batch if n["kind"] == "page_sent"]
        seen: dict[tuple[str, str, str | None], dict] = {}
        for n in batch:
            if n["kind"] != "page_sent":
                seen.setdefault((n["incident"], n["kind"], n.get("clock")), n)
        docs: dict[str, Incident | None] = {}
        ids = sorted({key[0] for key in seen})
        if ids:
            store = self.app[keys.ROUTER].store
            found = await asyncio.gather(*(store.get(i) for i in ids))
            docs = dict(zip(ids, found))
        for (incident_id, kind, clock), _n in seen.items():
            inc = docs.get(incident_id)
            if inc is None:
                continue
            chunk = frame(kind, {"incident": inc.public_json(), "clock": clock})
            for stream in list(self.streams):
                if stream.who.sees(inc):
                    self._send(stream, chunk)
        for n in pages:
            chunk = frame("page_sent", n)
            for stream in list(self.streams):
                if stream.sees_units(n["units"]):
                    self._send(stream, chunk)


HUB: web.AppKey[Hub] = web.AppKey("console_hub", Hub)


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB] = Hub(app)
    task = asyncio.create_task(supervise("console_events", hub.run, app[keys.RUNTIME].metrics.task_restarts))

    async def on_shutdown(_app: web.Application) -> None:
        hub.close_all()  # open streams end now, so the server's shutdown does not wait on them

    app.on_shutdown.append(on_shutdown)
    yield
    await stop([task])  # re-cancels: redis-py's pub/sub read can drop one cancellation


@routes.get("/api/v1/events")
async def events(request: web.Request) -> web.StreamResponse:
    who = caller(request, "incidents:read")
    hub = request.app[HUB]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    stream = hub.join(who)
    try:
        await response.write(frame("ready", {"actor": who.name}))
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT):
                    chunk = await stream.queue.get()
            except TimeoutError:
                chunk = b": keep-alive\n\n"
            if chunk is None:
                break
            await response.write(chunk)
    except (ConnectionResetError, ConnectionError):
        pass  # the browser went away
    finally:
        hub.leave(stream)
    return response
