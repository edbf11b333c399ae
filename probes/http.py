"""system.http: a core business system's (H2000, tax collection) HTTP endpoint.

Status, optional body match, latency, redirects, separate connect and read timeouts,
and for https the certificate's expiry (``system.cert_expiring`` under ``cert_warn``).
By default every check opens a new connection (``Connection: close``), as a person's
browser would after an outage; ``keepalive: true`` reuses the session's pool.
"""
from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from datetime import datetime, timezone
from typing import Literal, cast

import aiohttp
from cryptography import x509
from pydantic import Field, field_validator
from yarl import URL

from monitor.core.errors import ProbeConnectError, ProbeTimeout, ProtocolError
from monitor.core.reading import Reading
from monitor.core.target import Duration, HttpUrl, Target, TargetSpec

from .base import Probe

_MAX_BODY = 1 << 20  # body match reads at most 1 MiB


class HttpSpec(TargetSpec):
    kind: Literal["system.http"]
    url: HttpUrl
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: tuple[int, ...] = (200, 201, 202, 203, 204)
    body_match: str | None = None  # a regular expression the body must match
    follow_redirects: bool = True
    max_redirects: int = Field(5, ge=1, le=20)  # follow_redirects: false for none
    connect_timeout: Duration | None = None  # default: the target's timeout
    read_timeout: Duration | None = None
    slow_after: Duration | None = None  # latency over this → system.slow
    keepalive: bool = False
    headers: dict[str, str] = Field(default_factory=dict)
    cert_warn: Duration = 14 * 86400.0  # certificate expiring sooner → system.cert_expiring
    tls_verify: bool = True
    ca_file: str | None = None  # trust this CA (a private PKI) instead of the system's


    @field_validator("body_match")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as err:
                raise ValueError(f"not a valid regular expression: {err}") from None
        return v


@functools.lru_cache(maxsize=64)
def _ssl_context(ca_file: str | None, verify: bool) -> ssl.SSLContext | bool:
    if not verify:
        return False
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


_NO_VERIFY = ssl.create_default_context()
_NO_VERIFY.check_hostname = False
_NO_VERIFY.verify_mode = ssl.CERT_NONE
CERT_RECHECK = 3600.0  # a certificate's expiry is read at most hourly per target


async def peer_cert_expiry(url: URL, timeout: float) -> float:
    """notAfter of the server's certificate (unix time). Read over its own handshake,
    without verification: whether the certificate is trusted is the request's judgement;
    this only reads the date (aiohttp releases the connection before it can be read)."""
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(url.host, url.port, ssl=_NO_VERIFY, server_hostname=url.host)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.transport.abort()
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


class HttpProbe(Probe):
    spec = HttpSpec
    system = "core"
    faults = ("system.down", "system.slow", "system.cert_expiring")
    down_fault = "system.down"

    def __init__(self, ctx):
        super().__init__(ctx)
        self._expiry: dict[tuple, tuple[float, float]] = {}  # (target, host, port) → (read at, notAfter)

    async def _expiry_of(self, target: Target, url: URL) -> float | None:
        key = (target.name, url.host, url.port)
        cached = self._expiry.get(key)
        if cached and time.monotonic() - cached[0] < CERT_RECHECK:
            return cached[1]
        try:
            expiry = await peer_cert_expiry(url, target.spec.timeout)
        except (OSError, TimeoutError, ssl.SSLError, ValueError):
            return cached[1] if cached else None
        self._expiry[key] = (time.monotonic(), expiry)
        return expiry

    async def check(self, target: Target) -> Reading:
        spec = cast(HttpSpec, target.spec)
        timeout = aiohttp.ClientTimeout(total=spec.timeout,
                                        sock_connect=spec.connect_timeout or spec.timeout,
                                        sock_read=spec.read_timeout or spec.timeout)
        headers = dict(spec.headers)
        if not spec.keepalive:
            headers["Connection"] = "close"
        at, t0 = time.time(), time.perf_counter()
        try:
            async with self.ctx.session.request(
                    spec.method, spec.url, headers=headers, timeout=timeout,
                    allow_redirects=spec.follow_redirects, max_redirects=spec.max_redirects,
                    ssl=_ssl_context(spec.ca_file, spec.tls_verify)) as resp:
                status = resp.status
                final_url = resp.url
                body = await resp.content.read(_MAX_BODY) if spec.body_match else b""
        except aiohttp.ClientConnectorCertificateError as err:
            raise ProbeConnectError(target.name, f"{spec.url}: certificate not trusted: {err.certificate_error}") from err
        except aiohttp.ServerTimeoutError as err:
            raise ProbeTimeout(target.name, f"{spec.url}: {err or 'timed out'}") from err
        except aiohttp.TooManyRedirects as err:
            raise ProtocolError(target.name, f"{spec.url}: more than {spec.max_redirects} redirects") from err
        except (aiohttp.ClientConnectionError, OSError) as err:
            raise ProbeConnectError(target.name, f"{spec.url}: {err}") from err
        except aiohttp.ClientResponseError as err:
            raise ProtocolError(target.name, f"{spec.url}: {err.message}") from err
        except aiohttp.ClientError as err:
            raise ProtocolError(target.name, f"{spec.url}: {err}") from err
        elapsed = time.perf_counter() - t0
        detail: dict[str, object] = {"status": status}
        values = {"hallmon_http_status_code": float(status), "hallmon_http_duration_seconds": elapsed}
        error = None
        faults: set[str] = set()
        if status not in spec.expect_status:
            error = f"HTTP {status}, expected {', '.join(map(str, spec.expect_status))}"
        elif spec.body_match and not re.search(spec.body_match, body.decode("utf-8", "replace")):
            error = f"body does not match {spec.body_match!r}"
        if error:
            faults.add("system.down")
        elif spec.slow_after is not None and elapsed > spec.slow_after:
            faults.add("system.slow")
        expiry = await self._expiry_of(target, final_url) if final_url.scheme == "https" else None
        if expiry is not None:
            values["hallmon_tls_cert_expiry_timestamp_seconds"] = expiry
            detail["cert_expires"] = datetime.fromtimestamp(expiry, timezone.utc).isoformat()
            if expiry - at < spec.cert_warn:
                faults.add("system.cert_expiring")
        return Reading(target=target.name, at=at, ok=error is None, duration=elapsed,
                       faults=frozenset(faults), values=values, detail=detail, error=error)
