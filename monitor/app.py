"""The aiohttp application: one cleanup_ctx per resource, started in order and
closed in reverse."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from probes import PROBES, ProbeContext

from . import keys
from .checker import Checker
from .endpoints import routes
from .faults import FaultTracker
from .metrics import ReadingSeries, ServiceMetrics
from .runtime import Runtime
from .scheduler import Scheduler

log = structlog.get_logger("hallmon.app")


def public_url(runtime: Runtime) -> str:
    svc = runtime.config.service
    return (svc.public_url or f"http://{svc.listen}").rstrip("/")


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    url = app[keys.RUNTIME].config.service.redis_url
    client = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True)
    app[keys.REDIS] = client
    yield
    await client.aclose()


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    limit = app[keys.RUNTIME].config.service.max_concurrent_checks
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0))
    app[keys.SESSION] = session
    yield
    await session.close()


async def checks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Probes, fault tracker and scheduler: the checking half of the service."""
    rt = app[keys.RUNTIME]
    ctx = ProbeContext(session=app[keys.SESSION])
    probes = {kind: cls(ctx) for kind, cls in PROBES.items()}
    queue = app[keys.ALERTS]
    checker = Checker(probes, FaultTracker(public_url(rt)), ReadingSeries(), rt.metrics, queue.put_nowait)
    scheduler = Scheduler(checker.check, rt.metrics, rt.config.service.max_concurrent_checks)
    rt.start(checker, scheduler)
    log.info("checks_started", targets=len(rt.targets), shard=f"{rt.shard.index}/{rt.shard.count}")
    yield
    await scheduler.stop()
    for probe in probes.values():
        await probe.close()


async def alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    """The router's entry point. Until the router consumes it, alerts are logged."""
    queue = app[keys.ALERTS]

    async def consume() -> None:
        while True:
            alert = await queue.get()
            log.info("alert", fingerprint=alert.fingerprint, **alert.to_json())

    task = asyncio.create_task(consume())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def build_app(runtime: Runtime, registry: CollectorRegistry) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[keys.RUNTIME] = runtime
    app[keys.REGISTRY] = registry
    app[keys.ALERTS] = asyncio.Queue()
    app.cleanup_ctx.extend([redis_ctx, session_ctx, checks_ctx, alerts_ctx])
    app.add_routes(routes)
    return app
