"""A NUT-speaking UPS server (upsd's network protocol, the read-only part), scriptable:
go on battery, run low, raise alarms, go stale. For the demo, which needs nothing but
the package and redis-server; the ups.nut tests use the real upsd."""
from __future__ import annotations

import asyncio

from probes.nut import quote


class NutServer:
    def __init__(self, upses: dict[str, dict[str, str]]):
        self.upses = {name: dict(values) for name, values in upses.items()}
        self.stale: set[str] = set()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, ups: str, **values: str) -> None:
        self.upses[ups].update({k.replace("_", "."): v for k, v in values.items()})

    async def start(self) -> "NutServer":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                words = line.decode(errors="replace").split()
                writer.write(self._answer(words).encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _answer(self, words: list[str]) -> str:
        if words[:2] == ["LIST", "VAR"] and len(words) == 3:
            ups = words[2]
            if ups not in self.upses:
                return "ERR UNKNOWN-UPS\n"
            if ups in self.stale:
                return "ERR DATA-STALE\n"
            body = "".join(f"VAR {ups} {k} {quote(v)}\n" for k, v in sorted(self.upses[ups].items()))
            return f"BEGIN LIST VAR {ups}\n{body}END LIST VAR {ups}\n"
        if words[:2] == ["GET", "VAR"] and len(words) == 4:
            value = self.upses.get(words[2], {}).get(words[3])
            return f"VAR {words[2]} {words[3]} {quote(value)}\n" if value is not None else "ERR VAR-NOT-SUPPORTED\n"
        if words == ["VER"]:
            return "Network UPS Tools upsd 2.8.0 (hallmon simulator)\n"
        return "ERR UNKNOWN-COMMAND\n"

    async def stop(self) -> None:
        if self.server:
            self.server.close()
