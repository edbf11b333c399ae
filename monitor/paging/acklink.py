"""Signed acknowledgement links, one per page: a link acknowledges one incident as the
person it was sent to, once, until it expires, without a bearer token.

The link is ``…/api/v1/incidents/{id}/ack?p={person}&exp={unix}&sig={hmac}``, the HMAC
(SHA-256) over ``incident|person|exp``. ``p`` is a person's id, or ``channel:{id}`` for
a page to a channel (a group robot). A forged, altered or expired link is refused
(``verify`` gives None); a valid one is spent by ``redeem`` (a Redis key until it
expires), so a second use is refused: a link seen in a group chat cannot be replayed.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import quote, urlencode

import redis.asyncio as aioredis

USED = "hallmon:acklinks:used:"


@dataclass(frozen=True)
class AckLink:
    incident: str
    person: str  # a person's id, or "channel:{id}"
    expires: int
    sig: str

    async def redeem(self, client: aioredis.Redis, now: float | None = None) -> bool:
        """Spend the link; False when it was spent before."""
        ttl = max(1, self.expires - int(time.time() if now is None else now) + 60)
        return bool(await client.set(f"{USED}{self.sig}", self.person, nx=True, ex=ttl))


class AckSigner:
    def __init__(self, secret: bytes, ttl: float = 24 * 3600):
        if len(secret) < 16:
            raise ValueError("ack link secret must be at least 16 bytes")
        self._secret = secret
        self.ttl = ttl

    def _mac(self, incident_id: str, person: str, expires: int) -> str:
        return hmac.new(self._secret, f"{incident_id}|{person}|{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, base: str, incident_id: str, person: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl)
        query = urlencode({"p": person, "exp": expires, "sig": self._mac(incident_id, person, expires)})
        return f"{base.rstrip('/')}/api/v1/incidents/{quote(incident_id, safe='')}/ack?{query}"

    def verify(self, incident_id: str, query: Mapping[str, str], now: float | None = None) -> AckLink | None:
        """The link, when it is unexpired and signed for exactly this incident and person."""
        person, exp, sig = query.get("p"), query.get("exp"), query.get("sig")
        if not person or not exp or not sig or not (exp.isascii() and exp.isdigit()) or len(exp) > 12:
            return None
        if int(exp) < (time.time() if now is None else now):
            return None
        if not hmac.compare_digest(self._mac(incident_id, person, int(exp)), sig):
            return None
        return AckLink(incident_id, person, int(exp), sig)
