"""ups.nut: a UPS behind upsd, over NUT's network protocol (TCP 3493).

Read-only: the probe sends ``LIST VAR <ups>`` (and offers ``GET VAR``), never
``LOGIN``, ``INSTCMD`` or ``SET``. One connection per upsd address is shared by every
UPS on it; requests on it are serialised, and a connection that breaks, or whose
request was cut short by a timeout, is dropped and reopened by the next check.
``ups.status`` and the battery variables go through the shared power model
(``probes.power``).
"""
from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic import field_validator

from monitor.errors import NUT_ERRORS, NutError, ProbeConnectError, ProtocolError
from monitor.reading import Reading
from monitor.target import Target, parse_hostport, split_hostport

from .base import Probe
from .nutwire import MAX_LINE, MAX_LIST, WireError, format_line, parse_line, read_line
from .power import DOWN_FAULT, FAULTS, PowerSpec, PowerState, judge

DEFAULT_PORT = 3493
ON_BATTERY = {"OB"}
LOW_BATTERY = {"LB"}
UPS_FAULT = {"ALARM", "OVER", "BYPASS", "RB", "FSD"}


class NutSpec(PowerSpec):
    kind: Literal["ups.nut"]
    address: str
    ups: str

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, v: object) -> str:
        return parse_hostport(v, DEFAULT_PORT)

    @field_validator("ups")
    @classmethod
    def _ups(cls, v: str) -> str:
        if not v or any(c.isspace() or c == '"' for c in v):
            raise ValueError("expected a UPS name as upsd knows it, like ups1")
        return v


class NutConnection:
    """One TCP connection to one upsd, shared, one request at a time."""

    def __init__(self, address: str):
        self.address = address
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> None:
        host, port = split_hostport(self.address)
        try:
            self._reader, self._writer = await asyncio.open_connection(host, port, limit=MAX_LINE)
        except OSError as err:
            raise ProbeConnectError(self.address, f"connect upsd {self.address}: {err.strerror or err}") from err

    def drop(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None

    async def request(self, words: list[str], target: str) -> list[list[str]]:
        """Send one command; return the answer's lines as words (a list's inner lines
        for ``LIST``). Raises ``NutError`` for ``ERR``, ``ProtocolError`` for garbage."""
        async with self._lock:
            reused = self._writer is not None
            for attempt in (1, 2):
                if self._writer is None:
                    await self._open()
                try:
                    return await self._exchange(words, target)
                except (ConnectionError, OSError) as err:
                    self.drop()
                    if not reused or attempt == 2:  # a fresh connection failing is the answer
                        raise ProbeConnectError(target, f"upsd {self.address}: {err}") from err
                except BaseException:  # garbage, ERR or cancellation: state unknown, start over
                    self.drop()
                    raise
            raise AssertionError("unreachable")

    async def _exchange(self, words: list[str], target: str) -> list[list[str]]:
        assert self._writer is not None and self._reader is not None
        self._writer.write((format_line(words) + "\n").encode())
        await self._writer.drain()
        first = await self._line(target)
        if first[:1] == ["ERR"]:
            code = first[1] if len(first) > 1 else "UNKNOWN"
            raise NUT_ERRORS.get(code, NutError)(target, f"upsd {self.address}: ERR {code}", code)
        if words[0] != "LIST":
            return [first]
        if first[:2] != ["BEGIN", "LIST"]:
            raise ProtocolError(target, f"upsd {self.address}: expected BEGIN LIST, got {first[:3]}")
        end = ["END", *first[1:]]
        lines: list[list[str]] = []
        while True:
            line = await self._line(target)
            if line == end:
                return lines
            if len(lines) >= MAX_LIST:
                raise ProtocolError(target, f"upsd {self.address}: list longer than {MAX_LIST} lines")
            lines.append(line)

    async def _line(self, target: str) -> list[str]:
        assert self._reader is not None
        try:
            return parse_line(await read_line(self._reader))
        except WireError as err:
            raise ProtocolError(target, f"upsd {self.address}: {err}") from err

    async def list_vars(self, ups: str, target: str) -> dict[str, str]:
        out = {}
        for line in await self.request(["LIST", "VAR", ups], target):
            if len(line) != 4 or line[0] != "VAR" or line[1] != ups:
                raise ProtocolError(target, f"upsd {self.address}: unexpected line in LIST VAR: {line[:4]}")
            out[line[2]] = line[3]
        return out

    async def get_var(self, ups: str, name: str, target: str) -> str:
        line = (await self.request(["GET", "VAR", ups, name], target))[0]
        if len(line) != 4 or line[:3] != ["VAR", ups, name]:
            raise ProtocolError(target, f"upsd {self.address}: unexpected answer to GET VAR: {line[:4]}")
        return line[3]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def power_state(variables: dict[str, str]) -> PowerState:
    """NUT variables → the shared power model."""
    status = variables.get("ups.status", "")
    tokens = set(status.split())
    charge, load = _number(variables.get("battery.charge")), _number(variables.get("ups.load"))
    return PowerState(
        on_battery=bool(tokens & ON_BATTERY), low_battery=bool(tokens & LOW_BATTERY),
        ups_fault=bool(tokens & UPS_FAULT),
        charge_ratio=charge / 100 if charge is not None else None,
        runtime_seconds=_number(variables.get("battery.runtime")),
        load_ratio=load / 100 if load is not None else None,
        input_voltage=_number(variables.get("input.voltage")),
        detail={"ups.status": status, **({"ups.alarm": variables["ups.alarm"]} if "ups.alarm" in variables else {})})


class NutProbe(Probe):
    spec = NutSpec
    system = "power"
    faults = FAULTS
    down_fault = DOWN_FAULT

    def __init__(self, ctx):
        super().__init__(ctx)
        self._conns: dict[str, NutConnection] = {}

    def connection(self, address: str) -> NutConnection:
        conn = self._conns.get(address)
        if conn is None:
            conn = self._conns[address] = NutConnection(address)
        return conn

    async def check(self, target: Target) -> Reading:
        spec: NutSpec = target.spec
        at, t0 = time.time(), time.perf_counter()
        variables = await self.connection(spec.address).list_vars(spec.ups, target.name)
        if "ups.status" not in variables:
            raise ProtocolError(target.name, f"upsd {spec.address}: {spec.ups} has no ups.status")
        return judge(power_state(variables), spec, target.name, at, time.perf_counter() - t0)

    async def close(self) -> None:
        for conn in self._conns.values():
            conn.drop()
        self._conns.clear()
