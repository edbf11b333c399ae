"""Serving the app: bind, signal handling (SIGTERM/SIGINT stop, SIGHUP reloads), a
bounded shutdown."""
from __future__ import annotations

import asyncio
import gc
import signal
from typing import Callable

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.checks.metrics import ServiceMetrics
from monitor.config.model import load_config
from monitor.core.target import split_hostport
from monitor.service.app import build_app
from monitor.service.boundary import CappedSite, connection_cap
from monitor.service.runtime import Runtime, Shard

log = structlog.get_logger("hallmon.serve")


def event_loop_policy() -> None:
    try:
        import uvloop  # optional: a dependency on Linux only
    except ImportError:  # pragma: no cover
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def settle_heap() -> None:
    """Move what start-up made (config, plans, modules: ~100,000 objects) out of the
    garbage collector's sight: a storm's many short-lived alerts trigger collections,
    and each full one walked all of it (bench/router: ~30 % of a burst's CPU). A reload
    thaws it first (``reload``), so the config it replaces can still be collected."""
    gc.collect()
    gc.freeze()


def reload(runtime: Runtime) -> None:
    gc.unfreeze()
    runtime.reload()
    settle_heap()


async def serve(path: str, shard: str, ready: Callable[[str], None] | None = None) -> None:
    config = load_config(path)
    if not config.paging.policies:
        log.warning("paging_not_configured", effect="incidents open and clocks run, but nobody is paged: "
                                                    "add a paging: section (people, channels, rosters, policies)")
    registry = CollectorRegistry()
    runtime = Runtime(config=config, path=path, metrics=ServiceMetrics(registry), shard=Shard.parse(shard))
    app = build_app(runtime, registry)
    # a connection without a complete request is closed after idle_timeout (aiohttp's
    # keep-alive timer runs from the connection's start, headers not yet complete included)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           keepalive_timeout=config.service.http.idle_timeout)
    await runner.setup()
    host, port = split_hostport(config.service.listen)
    cap, fd_limit = connection_cap(config.service)
    site = CappedSite(runner, host, port, cap)
    try:
        await site.start()
    except OSError:  # the address is taken: stop what setup started before saying so
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    settle_heap()
    log.info("listening", address=f"{bound[0]}:{bound[1]}", max_connections=cap, fd_limit=fd_limit)
    if ready:
        ready(f"http://{bound[0]}:{bound[1]}")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: lambda: reload(runtime)}
    for sig, handler in signals.items():
        loop.add_signal_handler(sig, handler)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        for sig in signals:
            loop.remove_signal_handler(sig)
        try:
            async with asyncio.timeout(4.5):
                await runner.cleanup()
        except TimeoutError:
            log.warning("shutdown_timed_out")
        log.info("stopped")
