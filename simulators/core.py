"""A core business system (H2000, the tax collection system) over HTTP, scriptable:
``mode`` is ok, error (HTTP 503), slow (answers after ``slow_seconds``) or hang
(accepts and never answers). ``/older`` redirects to ``/old``, which redirects to ``/health``."""
from __future__ import annotations

import asyncio

from aiohttp import web


class CoreSystem:
    def __init__(self, name: str = "H2000", host: str = "127.0.0.1"):
        self.name = name
        self.host = host
        self.mode = "ok"
        self.slow_seconds = 2.0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.mode == "error":
            return web.json_response({"status": "DOWN", "system": self.name}, status=503)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if request.path == "/old":
            raise web.HTTPFound("/health")
        if request.path == "/older":
            raise web.HTTPFound("/old")
        return web.json_response({"status": "UP", "system": self.name})

    async def start(self) -> "CoreSystem":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/health"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
