"""A bank acquirer's host for POS network-management echoes (ISO 8583 over TCP),
scriptable: ``mode`` is ok, code (answers DE 39 = ``code``, e.g. 91), wrong_stan, hang
(reads and never answers), garbage (answers junk), huge (a length header claiming
65535 bytes, then silence), close (closes without answering), slow (answers after
``slow_seconds``)."""
from __future__ import annotations

import asyncio

from probes.iso8583frame import Framing
from probes.pos import decode, encode


class Acquirer:
    def __init__(self, framing: Framing = Framing(), host: str = "127.0.0.1"):
        self.framing = framing
        self.host = host
        self.mode = "ok"
        self.code = "91"
        self.slow_seconds = 1.0
        self.echoes = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> "Acquirer":
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = decode(await self.framing.read(reader))
                self.echoes += 1
                mode = self.mode
                if mode == "hang":
                    await asyncio.sleep(3600)
                if mode == "close":
                    break
                if mode == "garbage":
                    writer.write(b"\x00\x10\xde\xad\xbe\xefgarbage!!!!!")  # a whole frame of junk
                elif mode == "huge":
                    writer.write(b"\xff\xff")
                else:
                    if mode == "slow":
                        await asyncio.sleep(self.slow_seconds)
                    stan = request["11"] if mode != "wrong_stan" else f"{(int(request['11']) + 1) % 1_000_000:06d}"
                    answer = {"t": "0810", "7": request["7"], "11": stan, "39": self.code if mode == "code" else "00",
                              "70": request.get("70", "301")}
                    writer.write(self.framing.frame(encode(answer)))
                await writer.drain()
        except (ConnectionError, ValueError, KeyError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    async def stop(self) -> None:
        if self._server:
            self._server.close()
