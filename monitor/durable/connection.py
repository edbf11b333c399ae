"""The Redis client from ``service.redis_url``: a plain server (``redis://``,
``rediss://``, ``unix://``) or the primary that Redis Sentinel names
(``redis+sentinel://[:password@]host:26379[,host:26379…]/service[/db]``), so a failover
moves hallmon to the new primary without a config change.

This is the store's boundary (core/errors.py): the client raises ``StoreError`` when
Redis cannot serve a command (refused, reset, timed out, loading, read-only after a
failover) and ``StoreBusy`` when no pooled connection came free within the pool's wait.
What Redis answers on purpose passes through unchanged: ``WatchError`` (a concurrent
writer: retry) and other ``ResponseError``s (BUSYGROUP, a script's own error).
The pool is bounded (``service.redis_pool.size``) and a command waits for a free
connection at most ``service.redis_pool.wait`` seconds."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

import redis.asyncio as aioredis
import redis.exceptions
import structlog
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from monitor.core.errors import StoreBusy, StoreError
from monitor.core.secret import redact

log = structlog.get_logger("hallmon.redis")
SENTINEL = "redis+sentinel://"
# failures of the link or the server, not answers: these become StoreError
CONNECTION_FAILURES = _FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError,
             OSError)
# what a loop catches to ride out "Redis cannot serve": StoreError from our client, and
# redis-py's own errors from a plain client (tools and tests build those)
UNAVAILABLE = (StoreError, redis.exceptions.RedisError, OSError)


@dataclass(frozen=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None


def parse_sentinel(url: str) -> SentinelURL:
    """Raises ValueError with what is wrong."""
    rest = url.removeprefix(SENTINEL)
    password = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[-1]) or None
    hosts, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not hosts or not parts or len(parts) > 2:
        raise ValueError("expected redis+sentinel://host:26379[,host:26379…]/service[/db]")
    sentinels = []
    for item in hosts.split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"sentinel {item!r}: expected host:port")
        sentinels.append((host.strip("[]"), int(port)))
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValueError(f"db {parts[1]!r}: expected a number")
    return SentinelURL(tuple(sentinels), parts[0], int(parts[1]) if len(parts) == 2 else 0, password)


def translate(err: BaseException) -> StoreError:
    if isinstance(err, redis.exceptions.MaxConnectionsError):
        return StoreBusy("every Redis connection of the pool is busy")
    return StoreError(redact(f"{type(err).__name__}: {err}"))


class _Pool(BlockingConnectionPool):
    """A bounded pool whose wait for a free connection ends in ``StoreBusy``."""

    async def get_connection(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        try:
            return await super().get_connection(*args, **kwargs)
        except redis.exceptions.ConnectionError as err:
            if isinstance(err.__cause__, TimeoutError):
                raise StoreBusy(f"no Redis connection came free within {self.timeout:g}s "
                                f"(pool of {self.max_connections})") from err
            raise


class StorePipeline(Pipeline):
    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().immediate_execute_command(*args, **options)
        except _FAILURES as err:
            raise translate(err) from err

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return await super().execute(raise_on_error)
        except _FAILURES as err:
            raise translate(err) from err


class StoreClient(aioredis.Redis):
    """redis-py's asyncio client, whose failures are ``StoreError``s."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)
        except _FAILURES as err:
            raise translate(err) from err

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> StorePipeline:
        return StorePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


# a second, small pool per process for connections held for long (the intake's blocking
# reads, the incident metrics' subscription), so that they never take the requests' ones
LISTEN_POOL = 4


def connect(url: str, pool_size: int = 64, pool_wait: float = 1.0, **kwargs: Any) -> StoreClient:
    """A client for ``url``. A command that fails is retried once after a short pause (a
    connection Redis dropped on restart is replaced), then raises ``StoreError``."""
    kwargs.setdefault("retry", Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
    if not url.startswith(SENTINEL):
        pool = _Pool.from_url(url, max_connections=pool_size, timeout=pool_wait, **kwargs)
        client = StoreClient(connection_pool=pool)
        client.auto_close_connection_pool = True  # what from_pool does: closing the client closes its pool
        return client
    cfg = parse_sentinel(url)
    timeouts = {k: v for k, v in kwargs.items() if k in ("socket_connect_timeout", "socket_timeout")}
    # the password (if any) is the primary's; the sentinels are asked without one. The
    # sentinel pool does not wait for a free connection: past pool_size it is StoreBusy at once.
    sentinel = Sentinel(list(cfg.sentinels), sentinel_kwargs=timeouts, **timeouts)
    client = sentinel.master_for(cfg.service, redis_class=StoreClient, db=cfg.db, password=cfg.password,
                                 max_connections=pool_size, **kwargs)
    assert isinstance(client, StoreClient)
    return client


class Health:
    """Whether Redis answers, as ``/readyz`` tells it: a loop pings it every ``interval``
    and logs the transitions only (``redis_unreachable`` once, ``redis_reachable`` once)."""

    def __init__(self, url: str):
        self.url = redact(url)
        self.ok = False
        self.reason = "unreachable: not reached yet"
        self._said_down = False

    async def probe(self, client: aioredis.Redis, timeout: float = 1.0) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await client.ping()
        except (StoreError, TimeoutError) as err:
            self.ok, self.reason = False, f"unreachable: {err or 'no answer within %gs' % timeout}"
            if not self._said_down:
                log.warning("redis_unreachable", url=self.url, error=self.reason,
                            effect="API answers 503, alerts wait in memory, retrying")
                self._said_down = True
        else:
            if not self.ok:
                log.info("redis_reachable", url=self.url)
            self.ok, self.reason, self._said_down = True, "ok", False
        return self.ok

    async def watch(self, client: aioredis.Redis, interval: float = 1.0,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        while True:
            await self.probe(client)
            await sleep(interval)
