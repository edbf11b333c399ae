"""The Redis client from ``service.redis_url``: a plain server (``redis://``,
``rediss://``, ``unix://``) or the primary that Redis Sentinel names
(``redis+sentinel://[:password@]host:26379[,host:26379…]/service[/db]``), so a failover
moves hallmon to the new primary without a config change."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

SENTINEL = "redis+sentinel://"


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


def connect(url: str, **kwargs) -> aioredis.Redis:
    if not url.startswith(SENTINEL):
        return aioredis.from_url(url, **kwargs)
    cfg = parse_sentinel(url)
    timeouts = {k: v for k, v in kwargs.items() if k in ("socket_connect_timeout", "socket_timeout")}
    # the password (if any) is the primary's; the sentinels are asked without one
    sentinel = Sentinel(list(cfg.sentinels), sentinel_kwargs=timeouts, **timeouts)
    return sentinel.master_for(cfg.service, db=cfg.db, password=cfg.password, **kwargs)
