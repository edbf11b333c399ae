"""The HTTP boundary: every answer is JSON ``{"error": code, "detail": …}``, every
failed request is one log line, and a client cannot hold more of the server than its
share.

Only domain errors (core/errors.py) map to statuses, by class:

    Invalid 400 · Unauthorized 401 · Forbidden 403 · NotFound 404 · RequestTimeout 408
    Conflict 409 · StoreBusy 503 saturated · StoreError 503 store_unavailable
    BadCredentials 401 · AccountDisabled, NoRole 403 · SlowDown, Locked 429 (Retry-After)
    DirectoryUnavailable 503 directory_unavailable

A 503 carries ``Retry-After`` (Alertmanager retries 5xx, so nothing is lost). aiohttp's
own refusals (no such route 404, wrong method 405) keep their status with a JSON body;
anything else is a bug: 500 JSON, logged with its traceback. Each failure is logged once
as ``request_failed`` with its error class, route, status and request id (answered in
``X-Request-Id`` on every response).

Connections: one without a complete request within ``service.http.idle_timeout`` is
closed (aiohttp's keep-alive timer also covers a connection that never finishes its
headers); past ``max_connections`` open at once (capped further by the fd budget, see
``connection_cap``) a new connection is answered 503 and closed at once.
"""
from __future__ import annotations

import asyncio
import json
import re
import resource
import secrets

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from monitor.config.model import ServiceConfig
from monitor.core.errors import (
    AccountDisabled,
    BadCredentials,
    Conflict,
    DirectoryUnavailable,
    Forbidden,
    HallmonError,
    Invalid,
    Locked,
    NoRole,
    NotFound,
    RequestTimeout,
    SessionExpired,
    SlowDown,
    StoreBusy,
    StoreError,
    TooManyAttempts,
    Unauthorized,
)
from monitor.durable.connection import LISTEN_POOL

log = structlog.get_logger("hallmon.http")

STATUS: dict[type[HallmonError], tuple[int, str]] = {
    Invalid: (400, "bad_request"), Unauthorized: (401, "unauthorized"), Forbidden: (403, "forbidden"),
    NotFound: (404, "not_found"), RequestTimeout: (408, "request_timeout"), Conflict: (409, "conflict"),
    StoreBusy: (503, "saturated"), StoreError: (503, "store_unavailable"),
    BadCredentials: (401, "bad_credentials"), SessionExpired: (401, "session_expired"), AccountDisabled: (403, "account_disabled"), NoRole: (403, "no_role"),
    SlowDown: (429, "slow_down"), Locked: (429, "locked"), DirectoryUnavailable: (503, "directory_unavailable"),
}
RETRY_AFTER: dict[type[HallmonError], str] = {StoreBusy: "1", StoreError: "2", DirectoryUnavailable: "5"}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status, headers=headers)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path[:100]


def _answer(err: Exception) -> tuple[web.Response, str]:
    """The response for ``err`` and the log level it deserves."""
    if isinstance(err, HallmonError):
        for cls in type(err).__mro__:
            if cls in STATUS:
                status, code = STATUS[cls]
                retry = str(err.seconds) if isinstance(err, TooManyAttempts) else RETRY_AFTER.get(cls)
                headers = {"Retry-After": retry} if retry else None
                return error(status, code, str(err), headers), "warning" if status >= 500 else "info"
    if isinstance(err, web.HTTPException):
        code = err.reason.lower().replace(" ", "_").replace("-", "_")
        return error(err.status, code, err.text or err.reason, {"Allow": err.headers["Allow"]}
                     if "Allow" in err.headers else None), "info"
    return error(500, "internal_error", "an internal error; it is logged with this request's id"), "error"


@web.middleware
async def boundary(request: web.Request, handler) -> web.StreamResponse:
    supplied = request.headers.get("X-Request-Id", "")
    request_id = supplied if _REQUEST_ID.fullmatch(supplied) else secrets.token_hex(8)
    try:
        response = await handler(request)
    except web.HTTPException as err:
        if err.status < 400:
            raise  # redirects are answers, not failures
        response, level = _answer(err)
        _log_failure(level, request, request_id, err, response.status)
    except (HallmonError, Exception) as err:
        response, level = _answer(err)
        _log_failure(level, request, request_id, err, response.status)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response


def _log_failure(level: str, request: web.Request, request_id: str, err: Exception, status: int) -> None:
    fields = {"error_class": type(err).__name__, "route": _route(request), "method": request.method,
              "status": status, "request_id": request_id, "detail": str(err)[:300]}
    if level == "error":
        log.error("request_failed", exc_info=err, **fields)
    else:
        getattr(log, level)("request_failed", **fields)


# ── connections ──────────────────────────────────────────────────────────────────

_BUSY_BODY = json.dumps({"error": "saturated", "detail": "too many open connections; retry"}).encode()
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class _Refusal(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(BUSY)  # type: ignore[attr-defined]
        transport.close()


def connection_cap(svc: ServiceConfig) -> tuple[int, int]:
    """How many HTTP connections may be open at once, and the process's fd limit (its soft
    limit raised to the hard one first). The cap leaves room for every concurrent check,
    every pooled Redis connection (both pools) and ``http.fd_reserve`` more, so that idle clients can
    never starve the probes into a false ``network.down``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    budget = soft - svc.max_concurrent_checks - svc.redis_pool.size - LISTEN_POOL - svc.http.fd_reserve
    return max(8, min(svc.http.max_connections, budget)), soft


class JsonErrors(RequestHandler):
    """aiohttp's connection handler, answering what never became a request (a malformed
    request line, a header past 8 KiB, TLS on the plain port) in JSON too, logged as one
    line instead of aiohttp's traceback."""

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        log.info("request_failed", error_class=type(exc).__name__ if exc else "HttpError", route="-",
                 status=status, request_id="-", detail=str(message or exc or "")[:200])
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        detail = str(getattr(exc, "message", None) or message or exc or "").splitlines()[0][:200]
        response = error(status, "bad_request" if status == 400 else "http_error", detail or "malformed HTTP")
        response.force_close()
        return response


class CappedSite(web.TCPSite):
    """A TCP site that answers connections past ``cap`` with 503 and closes them."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, cap: int):
        super().__init__(runner, host, port)
        self.cap = cap
        self.refused = 0

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        if len(server.connections) >= self.cap:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("http_connections_refused", cap=self.cap, refused=self.refused)
            return _Refusal()
        # what server() does, with the JSON error answers (aiohttp keeps its options in _kwargs)
        return JsonErrors(server, loop=asyncio.get_running_loop(), **server._kwargs)

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port, backlog=self._backlog,
                                                reuse_address=self._reuse_address)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port
