"""The aiohttp application: one cleanup_ctx per resource, started in order and
closed in reverse."""
from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import AsyncIterator

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.checks.checker import Checker
from monitor.checks.faults import FaultTracker
from monitor.checks.metrics import ReadingSeries
from monitor.checks.scheduler import Scheduler
from monitor.console import install as install_console
from monitor.core.errors import StoreError
from monitor.core.outage import Outage
from monitor.core.supervise import stop, supervise
from monitor.durable import connection as redisconn
from monitor.durable.timers import Timers
from monitor.incidents.history import migrate_history
from monitor.incidents.intake import Intake
from monitor.incidents.metrics import IncidentCollector, refresh_forever
from monitor.incidents.router import Router
from monitor.incidents.store import IncidentStore
from monitor.paging import shiftcheck
from monitor.paging.acklink import AckSigner
from monitor.paging.handoff import build
from monitor.paging.pager import Pager
from monitor.service import keys, recovery
from monitor.service.access import identify
from monitor.service.accounts_api import auth_ctx
from monitor.service.accounts_api import routes as accounts_routes
from monitor.service.api import routes as api_routes
from monitor.service.boundary import boundary
from monitor.service.duties_api import duties_ctx
from monitor.service.duties_api import routes as duties_routes
from monitor.service.endpoints import routes, target_states
from monitor.service.ingest import parse_stored
from monitor.service.runtime import Runtime
from monitor.sources.routes import routes as source_routes
from probes import PROBES, ProbeContext

log = structlog.get_logger("hallmon.app")
RESUME_WAIT = 2.0  # seconds start-up waits for Redis to say what the targets left firing


def public_url(runtime: Runtime) -> str:
    svc = runtime.config.service
    return (svc.public_url or f"http://{svc.listen}").rstrip("/")


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Redis client, and the watch that tells /readyz whether Redis answers. Nothing
    here waits for Redis: the service starts without it and keeps trying."""
    svc = app[keys.RUNTIME].config.service
    client = redisconn.connect(svc.redis_url, pool_size=svc.redis_pool.size, pool_wait=svc.redis_pool.wait,
                               socket_connect_timeout=2, socket_timeout=5, decode_responses=True)
    app[keys.REDIS] = client
    health = app[keys.STORE_HEALTH] = redisconn.Health(svc.redis_url)
    task = asyncio.create_task(supervise("redis_health", lambda: health.watch(client),
                                         app[keys.RUNTIME].metrics.task_restarts))
    yield
    await stop([task])
    await client.aclose()


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    limit = app[keys.RUNTIME].config.service.max_concurrent_checks
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0))
    app[keys.SESSION] = session
    yield
    await session.close()


async def checks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Probes, fault tracker and scheduler: the checking half of the service. The
    tracker first takes up what this shard's targets left firing before a restart
    (``recovery``), waiting for Redis at most ``RESUME_WAIT`` before checks start."""
    rt = app[keys.RUNTIME]
    ctx = ProbeContext(session=app[keys.SESSION])
    probes = {kind: cls(ctx) for kind, cls in PROBES.items()}
    queue = app[keys.ALERTS]
    tracker = FaultTracker(public_url(rt), uplinks=rt.config.uplinks)
    checker = Checker(probes, tracker, ReadingSeries(), rt.metrics, queue.put_nowait)
    scheduler = Scheduler(checker.check, rt.metrics, rt.config.service.max_concurrent_checks)
    resuming = asyncio.create_task(recovery.resume(tracker, app[keys.ROUTER].store, rt.targets))
    await asyncio.wait({resuming}, timeout=RESUME_WAIT)
    rt.start(checker, scheduler)
    log.info("checks_started", targets=len(rt.targets), shard=f"{rt.shard.index}/{rt.shard.count}")
    yield
    await stop([resuming])
    await scheduler.stop()
    for probe in probes.values():
        await probe.close()


async def router_ctx(app: web.Application) -> AsyncIterator[None]:
    """The router with its store, clock timers, ack-link signer and incident metrics;
    it consumes the probes' alerts (the fast path) from ``app[keys.ALERTS]``."""
    rt = app[keys.RUNTIME]
    cfg = rt.config
    client = app[keys.REDIS]
    # a short lease: clocks a killed replica had claimed fire again within ~2 s; a second
    # run of a handler is harmless (it re-reads the clock inside WATCH and finds it done)
    timers = Timers(client, "hallmon:clocktimers", lease=2.0)
    store = IncidentStore(client, timers)
    router = Router(store, lambda: rt.config)  # its calendar: the running config's work_calendar
    app[keys.ROUTER] = router
    # the intake's blocking reads and the metrics' subscription hold their connections:
    # a pool of their own, so that a small redis_pool is all the requests'
    listen = redisconn.connect(cfg.service.redis_url, pool_size=redisconn.LISTEN_POOL, pool_wait=1.0, socket_connect_timeout=2,
                               socket_timeout=5, decode_responses=True)
    intake = Intake(client, router, parse_stored, cap=lambda: rt.config.api.max_new_incidents_per_request,
                    reader=listen)
    app[keys.INTAKE] = intake
    secret = cfg.api.link_secret_env or cfg.api.link_secret_file
    if secret is None:
        log.warning("ack_link_secret_missing", effect="links from this process die with it; set api.link_secret_env")
    app[keys.ACK_SIGNER] = AckSigner(secret.value.encode() if secret else secrets.token_bytes(32), cfg.api.link_ttl)
    collector = IncidentCollector()
    app[keys.REGISTRY].register(collector)
    queue = app[keys.ALERTS]

    async def consume() -> None:
        """Drain the probes' alerts in batches; on a store failure keep them and retry.
        Anything else escapes to the supervisor, which logs it and starts again; the
        batch that raised it is dropped then, so one bad alert cannot wedge the rest."""
        pending: list = []
        store = Outage("router_store", log)
        while True:
            if not pending:
                pending.append(await queue.get())
            while not queue.empty() and len(pending) < 5000:
                pending.append(queue.get_nowait())
            try:
                await router.ingest(pending)
                pending = []
                store.ok()
            except StoreError as err:
                store.failing(err, held=len(pending))
                await asyncio.sleep(1.0)

    migrated = app[keys.HISTORY_READY] = asyncio.Event()

    async def migrate() -> None:
        """0.6's history compacted and indexed once (a no-op read of one key after that);
        /readyz says "migrating" until it has run. Retried while Redis is away."""
        while True:
            try:
                await migrate_history(client)
                break
            except StoreError:  # Redis away at start: the store's own log says so once
                await asyncio.sleep(1.0)
        migrated.set()
        await asyncio.Event().wait()

    restarts = rt.metrics.task_restarts
    tasks = [asyncio.create_task(supervise("history_migration", migrate, restarts)),
             asyncio.create_task(supervise("router_consumer", consume, restarts)),
             asyncio.create_task(supervise("intake", intake.run, restarts)),
             asyncio.create_task(supervise("clock_timers", lambda: timers.run(router.clock_timer), restarts)),
             asyncio.create_task(supervise("incident_metrics", lambda: refresh_forever(collector, store, listen=listen),
                                            restarts))]
    yield
    await stop(tasks)
    await listen.aclose()
    app[keys.REGISTRY].unregister(collector)


async def paging_ctx(app: web.Application) -> AsyncIterator[None]:
    """The pager, when the config has escalation policies."""
    rt = app[keys.RUNTIME]
    cfg = rt.config
    if not cfg.paging.policies:
        yield
        return
    pager = Pager(app[keys.REDIS], lambda: rt.config, app[keys.SESSION], app[keys.REGISTRY], app[keys.ACK_SIGNER],
                  cfg.work_calendar)

    async def report_for(roster_id: str, at) -> dict:
        docs = await app[keys.ROUTER].store.list()
        checks = await shiftcheck.recent(app[keys.REDIS], roster_id, at - timedelta(days=31), at)
        return build(pager.rosters(), roster_id, at, target_states(rt), [d.public_json() for d in docs], checks)

    task = asyncio.create_task(pager.run_forever(rt.metrics.task_restarts, report_for))
    yield
    await stop([task])
    await pager.close()


def build_app(runtime: Runtime, registry: CollectorRegistry) -> web.Application:
    app = web.Application(client_max_size=runtime.config.api.max_body_bytes, middlewares=[boundary, identify])
    app[keys.RUNTIME] = runtime
    app[keys.REGISTRY] = registry
    app[keys.ALERTS] = asyncio.Queue()
    # the router before the checks: they resume from its store, and stop before it on the way down
    app.cleanup_ctx.extend([redis_ctx, auth_ctx, session_ctx, router_ctx, checks_ctx, duties_ctx, paging_ctx])
    app.add_routes(routes)
    app.add_routes(api_routes)
    app.add_routes(duties_routes)
    app.add_routes(accounts_routes)
    app.add_routes(source_routes)
    install_console(app)
    return app
