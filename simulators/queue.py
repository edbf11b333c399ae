"""A queue-number system's HTTP status endpoint, scriptable: people arrive, windows call
tickets, the caller hangs (stall), the server errs or talks garbage. ``format`` is
``generic`` (flat) or ``nested-v2`` (a vendor-style nested document)."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web


class QueueSystem:
    def __init__(self, fmt: str = "generic"):
        self.format = fmt
        self.mode = "ok"  # ok | error | garbage | hang
        self.waiting = 3
        self.longest_wait = 120.0
        self.issued = 40
        self.windows_open = 4
        self.last_called_at = time.time()
        self.runner: web.AppRunner | None = None
        self.url = ""

    def arrive(self, n: int) -> None:
        self.waiting += n
        self.issued += n

    def call(self) -> None:
        if self.waiting:
            self.waiting -= 1
        self.last_called_at = time.time()

    def stall(self, seconds: float) -> None:
        """Nobody has been called for ``seconds``."""
        self.last_called_at = time.time() - seconds

    async def start(self) -> "QueueSystem":
        app = web.Application()
        app.router.add_get("/status", self.status)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/status"
        return self

    async def status(self, request: web.Request) -> web.Response:
        if self.mode == "error":
            return web.Response(status=500, text="queue server error")
        if self.mode == "garbage":
            return web.Response(text="<html>维护中</html>", content_type="text/html")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.format == "nested-v2":
            return web.json_response({"code": 0, "data": {
                "queue": {"waiting": self.waiting, "max_wait_sec": self.longest_wait,
                          "last_call_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self.last_called_at))},
                "counters": {"issued_today": self.issued, "windows_open": self.windows_open}}})
        return web.json_response({"waiting": self.waiting, "longest_wait_seconds": self.longest_wait,
                                  "tickets_issued": self.issued, "last_called_at": self.last_called_at,
                                  "windows_open": self.windows_open})

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
