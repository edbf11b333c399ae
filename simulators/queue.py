"""A queue-number system's HTTP/JSON status (the ``generic`` preset's shape),
scriptable: set ``waiting``/``longest_wait_seconds``, ``call()`` a ticket, ``stall()``
(last call long ago), ``congest(n)``; ``mode`` ok, error (HTTP 503), garbage (not
JSON), hang."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web


class QueueSystem:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.mode = "ok"
        self.waiting = 3
        self.longest_wait_seconds = 120.0
        self.tickets_issued = 40
        self.windows_open = 4
        self.last_called_at = time.time()
        self.port = 0
        self._runner: web.AppRunner | None = None

    def call(self) -> None:
        self.last_called_at = time.time()
        self.waiting = max(0, self.waiting - 1)

    def stall(self, seconds: float = 3600) -> None:
        self.last_called_at = time.time() - seconds

    def congest(self, waiting: int = 100, longest: float = 3600) -> None:
        self.waiting, self.longest_wait_seconds = waiting, longest
        self.tickets_issued += waiting

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "error":
            return web.Response(status=503, text="queue server busy")
        if self.mode == "garbage":
            return web.Response(body=b"\x00\xffnot json", content_type="application/json")
        return web.json_response({
            "waiting": self.waiting, "longest_wait_seconds": self.longest_wait_seconds,
            "tickets_issued": self.tickets_issued, "windows_open": self.windows_open,
            "last_called_at": self.last_called_at})

    async def start(self) -> "QueueSystem":
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api/queue/status"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
