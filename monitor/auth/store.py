"""Accounts, sessions, machine tokens and the audit log in Redis.

    hallmon:auth:account:{name}        an Account's JSON
    hallmon:auth:accounts              set of account names
    hallmon:auth:session:{digest}      a Session's JSON; expires at its absolute end
    hallmon:auth:sessions:{account}    set of that account's session digests (sign out everywhere)
    hallmon:auth:token:{digest}        a MachineToken's JSON
    hallmon:auth:tokens                hash token id → digest
    hallmon:auth:audit                 stream of AuditEntry JSON (capped, newest last)

A session or token is looked up by the SHA-256 of what the caller presents, so the
secret itself is never stored and a dump of Redis signs no one in. Idle expiry is the
record's ``idle_until``, moved forward when a request uses the session and less than
nine tenths of the idle time is left (one write per tenth of the idle time, not one
per request); Redis drops the key at the absolute end in any case.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from monitor.auth.records import Account, AuditEntry, MachineToken, Session
from monitor.core.timesource import SYSTEM_TIME, TimeSource

P = "hallmon:auth:"
AUDIT_CAP = 100_000


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


class AuthStore:
    def __init__(self, redis: Any, clock: TimeSource = SYSTEM_TIME):
        self.r = redis
        self.clock = clock

    # ── accounts ────────────────────────────────────────────────────────────────
    async def account(self, name: str) -> Account | None:
        raw = await self.r.get(f"{P}account:{name}")
        return Account.from_json(json.loads(raw)) if raw else None

    async def accounts(self) -> list[Account]:
        names = sorted(await self.r.smembers(f"{P}accounts"))
        raws = await self.r.mget([f"{P}account:{n}" for n in names]) if names else []
        return [Account.from_json(json.loads(r)) for r in raws if r]

    async def add_account(self, account: Account) -> bool:
        """False when the name is taken (nothing is written then)."""
        if not await self.r.set(f"{P}account:{account.name}", json.dumps(account.to_json()), nx=True):
            return False
        await self.r.sadd(f"{P}accounts", account.name)
        return True

    async def put_account(self, account: Account) -> None:
        await self.r.set(f"{P}account:{account.name}", json.dumps(account.to_json()))

    # ── sessions ────────────────────────────────────────────────────────────────
    async def open_session(self, session: Session) -> str:
        """Store ``session`` under a new token's digest; returns the token (shown once)."""
        token = new_secret("hs_")
        session = replace(session, id=digest(token))
        pipe = self.r.pipeline(transaction=True)
        pipe.set(f"{P}session:{session.id}", json.dumps(session.to_json()), pxat=_ms(session.absolute_until))
        pipe.sadd(f"{P}sessions:{session.account}", session.id)
        pipe.pexpireat(f"{P}sessions:{session.account}", _ms(session.absolute_until), gt=True)
        pipe.pexpireat(f"{P}sessions:{session.account}", _ms(session.absolute_until), nx=True)
        await pipe.execute()
        return token

    async def session(self, token: str, idle: float) -> tuple[Session | None, str]:
        """The live session of ``token`` and "", or None and why not ("" unknown,
        "idle" or "absolute" for one that just expired: it is deleted)."""
        key = f"{P}session:{digest(token)}"
        raw = await self.r.get(key)
        if raw is None:
            return None, ""
        s = Session.from_json(json.loads(raw))
        now = self.clock.now()
        if now >= s.absolute_until or now >= s.idle_until:
            await self.end_session(s)
            return None, "absolute" if now >= s.absolute_until else "idle"
        if (s.idle_until - now).total_seconds() < 0.9 * idle:
            s = replace(s, idle_until=min(now + timedelta(seconds=idle), s.absolute_until))
            await self.r.set(key, json.dumps(s.to_json()), pxat=_ms(s.absolute_until), xx=True)
        return s, ""

    async def end_session(self, s: Session) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(f"{P}session:{s.id}")
        pipe.srem(f"{P}sessions:{s.account}", s.id)
        await pipe.execute()

    async def end_sessions(self, account: str) -> int:
        """End every session of ``account``; returns how many there were."""
        ids = await self.r.smembers(f"{P}sessions:{account}")
        pipe = self.r.pipeline(transaction=True)
        for sid in ids:
            pipe.delete(f"{P}session:{sid}")
        pipe.delete(f"{P}sessions:{account}")
        results = await pipe.execute()
        return sum(results[:-1])

    # ── machine tokens ──────────────────────────────────────────────────────────
    async def create_token(self, name: str, scopes: tuple[str, ...], units: tuple[str, ...] | None,
                           by: str) -> tuple[MachineToken, str]:
        """A new token and its secret (returned once; only its digest is stored)."""
        secret = new_secret("hm_")
        token = MachineToken(secrets.token_hex(6), name, scopes, units, digest(secret), by, self.clock.now())
        pipe = self.r.pipeline(transaction=True)
        pipe.set(f"{P}token:{token.digest}", json.dumps(token.to_json()))
        pipe.hset(f"{P}tokens", token.id, token.digest)
        await pipe.execute()
        return token, secret

    async def token(self, secret: str) -> MachineToken | None:
        raw = await self.r.get(f"{P}token:{digest(secret)}")
        return MachineToken.from_json(json.loads(raw)) if raw else None

    async def tokens(self) -> list[MachineToken]:
        digests = list((await self.r.hgetall(f"{P}tokens")).values())
        raws = await self.r.mget([f"{P}token:{d}" for d in digests]) if digests else []
        out = [MachineToken.from_json(json.loads(r)) for r in raws if r]
        return sorted(out, key=lambda t: t.created_at)

    async def revoke_token(self, token_id: str) -> MachineToken | None:
        d = await self.r.hget(f"{P}tokens", token_id)
        if d is None:
            return None
        raw = await self.r.get(f"{P}token:{d}")
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(f"{P}token:{d}")
        pipe.hdel(f"{P}tokens", token_id)
        await pipe.execute()
        return MachineToken.from_json(json.loads(raw)) if raw else None

    # ── the audit log ───────────────────────────────────────────────────────────
    async def audit(self, event: str, account: str, address: str, actor: str, detail: str = "") -> None:
        entry = AuditEntry(self.clock.now(), event, account, address, actor, detail)
        await self.r.xadd(f"{P}audit", {"e": json.dumps(entry.to_json(), ensure_ascii=False)},
                          maxlen=AUDIT_CAP, approximate=True)

    async def audit_log(self, limit: int = 200, account: str | None = None) -> list[AuditEntry]:
        """The newest entries first (at most ``limit``; of one account when given)."""
        out: list[AuditEntry] = []
        last = "+"
        while len(out) < limit:
            batch = await self.r.xrevrange(f"{P}audit", max=last, min="-", count=500)
            if not batch:
                break
            for entry_id, fields in batch:
                if entry_id == last:
                    continue
                e = AuditEntry.from_json(json.loads(fields["e"]))
                if account is None or e.account == account:
                    out.append(e)
            if len(batch) < 500:
                break
            last = batch[-1][0]
        return out[:limit]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
