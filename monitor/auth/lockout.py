"""Failed sign-ins slow down, then lock: per account name and per client address.

    hallmon:auth:fail:{kind}:{id}   failures within the window (INCR; expires with the window)
    hallmon:auth:wait:{kind}:{id}   the earliest time of the next attempt, epoch ms (slow-down)
    hallmon:auth:lock:{kind}:{id}   set while locked; expires at the lock's end

``kind`` is ``account`` or ``address``. An attempt is refused before any password is
checked while either is waiting or locked, so a locked account costs the server no hash.
Unknown names count like known ones: the answers do not tell which names exist. A
successful sign-in clears the account's failures (not the address's).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from monitor.config.auth import LockoutConfig
from monitor.core.timesource import TimeSource

P = "hallmon:auth:"
MAX_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Hold:
    """Why an attempt is refused now: ``locked`` or ``slow_down``, of which kind, for how long."""

    reason: str  # "locked" | "slow_down"
    kind: str  # "account" | "address"
    seconds: int  # until the next attempt may be made


class Lockout:
    def __init__(self, redis: Any, config: LockoutConfig, clock: TimeSource):
        self.r = redis
        self.cfg = config
        self.clock = clock

    def _keys(self, kind: str, ident: str) -> tuple[str, str, str]:
        return f"{P}fail:{kind}:{ident}", f"{P}wait:{kind}:{ident}", f"{P}lock:{kind}:{ident}"

    async def hold(self, account: str, address: str) -> Hold | None:
        """A lock or a wait in force on this account or address (locks first)."""
        pairs = (("account", account), ("address", address))
        keys = [k for kind, ident in pairs for k in self._keys(kind, ident)[1:]]
        now_ms = self.clock.now().timestamp() * 1000
        values = await self.r.mget(keys)
        holds = []
        for i, (kind, _) in enumerate(pairs):
            wait, lock = values[2 * i], values[2 * i + 1]
            if lock is not None and float(lock) > now_ms:
                holds.append(Hold("locked", kind, math.ceil((float(lock) - now_ms) / 1000)))
            elif wait is not None and float(wait) > now_ms:
                holds.append(Hold("slow_down", kind, math.ceil((float(wait) - now_ms) / 1000)))
        holds.sort(key=lambda h: (h.reason != "locked", -h.seconds))
        return holds[0] if holds else None

    async def failed(self, account: str, address: str) -> Hold | None:
        """Count a failure on both; returns the lock it caused, if it caused one."""
        now_ms = self.clock.now().timestamp() * 1000
        caused = None
        for kind, ident, slow_after, lock_after in (
                ("account", account, self.cfg.slow_after, self.cfg.lock_after),
                ("address", address, self.cfg.address_slow_after, self.cfg.address_lock_after)):
            fail, wait, lock = self._keys(kind, ident)
            pipe = self.r.pipeline(transaction=True)
            pipe.incr(fail)
            pipe.pexpire(fail, int(self.cfg.window * 1000), nx=True)
            n = (await pipe.execute())[0]
            if n >= lock_after:
                until = now_ms + self.cfg.lock_for * 1000
                await self.r.set(lock, str(until), px=int(self.cfg.lock_for * 1000))
                await self.r.delete(fail, wait)
                caused = caused or Hold("locked", kind, math.ceil(self.cfg.lock_for))
            elif n >= slow_after:
                delay = min(MAX_WAIT, 2.0 ** (n - slow_after))
                await self.r.set(wait, str(now_ms + delay * 1000), px=int(delay * 1000) + 1000)
        return caused

    async def succeeded(self, account: str) -> None:
        await self.r.delete(*self._keys("account", account)[:2])

    async def unlock(self, account: str) -> bool:
        """An admin's unlock: clears the account's failures, wait and lock."""
        return bool(await self.r.delete(*self._keys("account", account)))
