"""An ISO 8583 acquirer (bank / UnionPay host) answering network-management echoes,
scriptable: ``mode`` is ok, decline (DE 39 = ``code``), wrong_stan, hang, garbage,
huge_length (a length header claiming 2 GB-ish), or close."""
from __future__ import annotations

import asyncio

import iso8583

from probes.iso8583 import SPECS, frame, read_frame


class Acquirer:
    def __init__(self, framing: str = "binary2", tpdu: str | None = None, encoding: str = "ascii"):
        self.framing, self.encoding = framing, encoding
        self.tpdu = bytes.fromhex(tpdu) if tpdu else b""
        self.mode = "ok"
        self.code = "91"
        self.delay = 0.0
        self.received: list[dict] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> "Acquirer":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            body = await read_frame(reader, self.framing, len(self.tpdu), 8192)
            request, _ = iso8583.decode(bytearray(body), SPECS[self.encoding])
            self.received.append(request)
            if self.mode == "hang":
                await asyncio.sleep(3600)
            if self.mode == "close":
                return
            if self.mode == "garbage":
                writer.write(b"\x00\x10" + b"\xff" * 16)
            elif self.mode == "huge_length":
                writer.write((b"\xff\xff" if self.framing == "binary2" else b"9999") + b"x" * 10)
                if self.framing == "ascii4":
                    writer.write(b"y" * 100)
            else:
                await asyncio.sleep(self.delay)
                answer = {"t": "0810", "7": request.get("7", "0101000000"),
                          "11": "999999" if self.mode == "wrong_stan" else request["11"],
                          "39": self.code if self.mode == "decline" else "00", "70": request.get("70", "301")}
                raw, _ = iso8583.encode(answer, SPECS[self.encoding])
                writer.write(frame(bytes(raw), self.framing, self.tpdu))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
