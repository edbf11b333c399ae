"""Signed, expiring acknowledgement links: one link acknowledges one incident, without
a bearer token, until it expires. HMAC-SHA256 over ``incident_id|expires``."""
from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote


class AckSigner:
    def __init__(self, secret: bytes, ttl: float = 24 * 3600):
        if len(secret) < 16:
            raise ValueError("ack link secret must be at least 16 bytes")
        self._secret = secret
        self.ttl = ttl

    def _mac(self, incident_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{incident_id}|{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, base: str, incident_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl)
        return (f"{base.rstrip('/')}/api/v1/incidents/{quote(incident_id, safe='')}/ack"
                f"?exp={expires}&sig={self._mac(incident_id, expires)}")

    def verify(self, incident_id: str, exp: str | None, sig: str | None, now: float | None = None) -> bool:
        """True only for an unexpired link signed for exactly this incident."""
        if not exp or not sig or not exp.isdigit():
            return False
        if int(exp) < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self._mac(incident_id, int(exp)), sig)
