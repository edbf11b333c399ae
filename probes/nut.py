"""ups.nut: NUT's network protocol (upsd, TCP 3493), read-only.

Only ``LIST VAR`` is sent — never LOGIN, INSTCMD or SET. One connection per upsd is
shared by every UPS on it (requests are serialised on it) and reopened after a loss.
Replies are parsed with hard bounds: a line longer than 1 KiB, more than 2,000 variables,
or a peer that drips bytes past the timeout is a typed error, never unbounded memory.
``ERR`` replies become ``PeerError`` with NUT's code (DATA-STALE, DRIVER-NOT-CONNECTED,
UNKNOWN-UPS, ACCESS-DENIED…); all of them, and no answer, mean ``power.ups_unreachable``.
"""
from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal, cast

from pydantic import BeforeValidator

from monitor.core.errors import PeerError, ProbeConnectError, ProtocolError, os_reason
from monitor.core.reading import Reading
from monitor.core.target import Name, Target, TargetSpec, parse_hostport, split_hostport

from .base import Probe
from .power import FAULTS, Thresholds, UpsState, assess

MAX_LINE = 1024
MAX_VARS = 2000


class NutSyntaxError(ValueError):
    pass


def split_words(line: str) -> list[str]:
    """Split a NUT reply line into words; double-quoted words may hold spaces and the
    escapes ``\\"`` and ``\\\\``."""
    words, i, n = [], 0, len(line)
    while i < n:
        if line[i] == " ":
            i += 1
            continue
        if line[i] == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise NutSyntaxError("unterminated quoted value")
                c = line[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise NutSyntaxError("dangling escape")
                    buf.append(line[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
            words.append("".join(buf))
        else:
            j = line.find(" ", i)
            j = n if j < 0 else j
            words.append(line[i:j])
            i = j
    return words


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_var_list(ups: str, lines: list[str]) -> dict[str, str]:
    """The lines of a ``LIST VAR`` reply, BEGIN to END, as a dict."""
    if not lines or split_words(lines[0]) != ["BEGIN", "LIST", "VAR", ups]:
        raise NutSyntaxError(f"expected BEGIN LIST VAR {ups}")
    out = {}
    for line in lines[1:-1]:
        words = split_words(line)
        if len(words) != 4 or words[0] != "VAR" or words[1] != ups:
            raise NutSyntaxError(f"unexpected line {line[:60]!r}")
        out[words[2]] = words[3]
    if split_words(lines[-1]) != ["END", "LIST", "VAR", ups]:
        raise NutSyntaxError(f"expected END LIST VAR {ups}")
    return out


class NutConnection:
    """One connection to one upsd, shared and serialised."""

    def __init__(self, address: str):
        self.address = address
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _line(self, target: str) -> str:
        assert self.reader is not None, "read before _open"
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as err:
            raise ProtocolError(target, f"{self.address}: reply line longer than {MAX_LINE} bytes") from err
        except asyncio.IncompleteReadError as err:
            raise ProbeConnectError(target, f"{self.address}: connection closed by upsd") from err
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise ProtocolError(target, f"{self.address}: reply is not text") from err

    async def _open(self, target: str) -> None:
        host, port = split_hostport(self.address)
        try:
            self.reader, self.writer = await asyncio.open_connection(host, port, limit=MAX_LINE)
        except OSError as err:
            raise ProbeConnectError(target, f"upsd {self.address}: {os_reason(err)}") from err

    async def list_vars(self, target: str, ups: str) -> dict[str, str]:
        """``LIST VAR`` on the shared connection. A kept connection that upsd closed
        meanwhile (a restart) is reopened and the request sent once more, so that a
        restart of upsd does not read as the UPS being unreachable."""
        async with self.lock:
            reused = self.writer is not None and not self.writer.is_closing()
            if not reused:
                await self._open(target)
            try:
                return await self._exchange(target, ups)
            except ProbeConnectError:
                if not reused:
                    raise
            await self._open(target)
            return await self._exchange(target, ups)

    async def _exchange(self, target: str, ups: str) -> dict[str, str]:
        assert self.writer is not None, "write before _open"
        try:
            self.writer.write(f"LIST VAR {ups}\n".encode())
            await self.writer.drain()
            first = await self._line(target)
            if first.startswith("ERR "):
                code = first[4:].split(" ")[0]
                raise PeerError(target, f"upsd {self.address}: ERR {code} for {ups}", code)
            if not first.startswith("BEGIN LIST VAR "):
                raise NutSyntaxError(f"expected BEGIN LIST VAR {ups}, got {first[:40]!r}")
            lines = [first]
            while not lines[-1].startswith("END "):
                if len(lines) > MAX_VARS:
                    raise ProtocolError(target, f"{self.address}: more than {MAX_VARS} variables")
                lines.append(await self._line(target))
            return parse_var_list(ups, lines)
        except PeerError:
            raise
        except NutSyntaxError as err:
            self.close()
            raise ProtocolError(target, f"{self.address}: {err}") from err
        except OSError as err:  # reset or broken pipe while writing
            self.close()
            raise ProbeConnectError(target, f"upsd {self.address}: {os_reason(err)}") from err
        except (ProtocolError, ProbeConnectError, asyncio.CancelledError):
            self.close()  # the stream is out of step: start afresh next time
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


def _num(vars_: dict[str, str], key: str) -> float | None:
    try:
        return float(vars_[key])
    except (KeyError, ValueError):
        return None


NutAddress = Annotated[str, BeforeValidator(lambda v: parse_hostport(v, default_port=3493))]


class NutSpec(TargetSpec, Thresholds):
    kind: Literal["ups.nut"]
    address: NutAddress
    ups: Name


class NutProbe(Probe):
    spec = NutSpec
    system = "power"
    faults = FAULTS
    down_fault = "power.ups_unreachable"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.connections: dict[str, NutConnection] = {}

    async def check(self, target: Target) -> Reading:
        spec = cast(NutSpec, target.spec)
        conn = self.connections.get(spec.address)
        if conn is None:
            conn = self.connections[spec.address] = NutConnection(spec.address)
        at, t0 = time.time(), time.perf_counter()
        vars_ = await conn.list_vars(target.name, spec.ups)  # a timeout cancels it and closes the connection
        state = UpsState(status=frozenset(vars_.get("ups.status", "").split()),
                         charge_pct=_num(vars_, "battery.charge"), runtime_s=_num(vars_, "battery.runtime"),
                         load_pct=_num(vars_, "ups.load"), input_voltage=_num(vars_, "input.voltage"))
        faults, values = assess(state, spec)
        return Reading(target=target.name, at=at, ok=True, duration=time.perf_counter() - t0, faults=faults,
                       values=values, detail={"ups.status": vars_.get("ups.status", ""),
                                              "device.model": vars_.get("device.model", "")})

    async def close(self) -> None:
        for conn in self.connections.values():
            conn.close()
