"""pos.iso8583: the acquirer link a hall's POS terminals debit through (Xiamen 4(1)1).

Opens TCP to the acquirer host and sends a network-management echo: MTI 0800 with DE 7
(transmission time), DE 11 (STAN) and DE 70 = 301; expects 0810 with DE 39 = 00 and the
same STAN. Framing is configurable: a 2-byte binary length (``binary2``), a 4-digit
ASCII length (``ascii4``), and an optional TPDU (hex) before the message. Encoding via
pyiso8583. A length header past ``max_message`` bytes, garbage, a wrong STAN or MTI, or
DE 39 ≠ 00 (the code goes into the reading) is ``pos.link_down``; an answer slower than
``slow_after`` is ``pos.slow``.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timezone
from typing import Literal, cast

import iso8583
import iso8583.specs
from pydantic import Field, field_validator

from monitor.core.errors import PeerError, ProbeConnectError, ProtocolError, os_reason
from monitor.core.reading import Reading
from monitor.core.target import Duration, HostPort, Target, TargetSpec, split_hostport

from .base import Probe

SPECS = {"ascii": iso8583.specs.default_ascii, "binary": iso8583.specs.default}


class FramingError(ValueError):
    pass


def frame(payload: bytes, framing: str, tpdu: bytes = b"") -> bytes:
    body = tpdu + payload
    if framing == "binary2":
        if len(body) > 0xFFFF:
            raise FramingError("message too long for a 2-byte length")
        return len(body).to_bytes(2, "big") + body
    if len(body) > 9999:
        raise FramingError("message too long for a 4-digit length")
    return f"{len(body):04d}".encode() + body


def parse_length(header: bytes, framing: str) -> int:
    if framing == "binary2":
        return int.from_bytes(header, "big")
    if not header.isdigit():
        raise FramingError(f"length header is not 4 ASCII digits: {header!r}")
    return int(header)


async def read_frame(reader: asyncio.StreamReader, framing: str, tpdu_len: int, max_message: int) -> bytes:
    header = await reader.readexactly(2 if framing == "binary2" else 4)
    length = parse_length(header, framing)
    if length > max_message:
        raise FramingError(f"length header claims {length} bytes (limit {max_message})")
    if length < tpdu_len:
        raise FramingError(f"length {length} shorter than the TPDU")
    body = await reader.readexactly(length)
    return body[tpdu_len:]


class Iso8583Spec(TargetSpec):
    kind: Literal["pos.iso8583"]
    address: HostPort
    framing: Literal["binary2", "ascii4"] = "binary2"
    tpdu: str | None = None  # hex, e.g. 6000000000
    encoding: Literal["ascii", "binary"] = "ascii"
    slow_after: Duration = 3.0
    max_message: int = Field(8192, ge=64, le=65535)

    @field_validator("tpdu")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                bytes.fromhex(v)
            except ValueError:
                raise ValueError("expected hex digits, like 6000000000") from None
        return v


class Iso8583Probe(Probe):
    spec = Iso8583Spec
    system = "payment"
    faults = ("pos.link_down", "pos.slow")
    down_fault = "pos.link_down"
    down_values = {"hallmon_pos_link_up": 0.0}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._stan = itertools.count(int(time.time()) % 999_999 + 1)

    def next_stan(self) -> str:
        return f"{next(self._stan) % 1_000_000:06d}"

    async def check(self, target: Target) -> Reading:
        spec = cast(Iso8583Spec, target.spec)
        host, port = split_hostport(spec.address)
        tpdu = bytes.fromhex(spec.tpdu) if spec.tpdu else b""
        stan = self.next_stan()
        echo = {"t": "0800", "7": datetime.now(timezone.utc).strftime("%m%d%H%M%S"), "11": stan, "70": "301"}
        raw, _ = iso8583.encode(echo, SPECS[spec.encoding])
        at, t0 = time.time(), time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=spec.max_message + 16)
        except OSError as err:
            raise ProbeConnectError(target.name, f"acquirer {spec.address}: {os_reason(err)}") from err
        try:
            writer.write(frame(bytes(raw), spec.framing, tpdu))
            await writer.drain()
            body = await read_frame(reader, spec.framing, len(tpdu), spec.max_message)
        except FramingError as err:
            raise ProtocolError(target.name, f"acquirer {spec.address}: {err}") from err
        except asyncio.IncompleteReadError as err:
            raise ProbeConnectError(target.name, f"acquirer {spec.address}: connection closed mid-answer") from err
        except OSError as err:
            raise ProbeConnectError(target.name, f"acquirer {spec.address}: {err}") from err
        finally:
            writer.transport.abort()
        rtt = time.perf_counter() - t0
        try:
            answer, _ = iso8583.decode(bytearray(body), SPECS[spec.encoding])
        except (iso8583.DecodeError, ValueError) as err:
            raise ProtocolError(target.name, f"acquirer {spec.address}: undecodable answer: {err}") from err
        if answer.get("t") != "0810":
            raise ProtocolError(target.name, f"acquirer answered MTI {answer.get('t')}, expected 0810")
        if answer.get("11") != stan:
            raise ProtocolError(target.name, f"acquirer answered STAN {answer.get('11')}, expected {stan}")
        code = answer.get("39")
        values = {"hallmon_pos_echo_rtt_seconds": rtt}
        if code != "00":
            raise PeerError(target.name, f"acquirer declined the echo: DE 39 = {code}", str(code))
        values["hallmon_pos_link_up"] = 1.0
        return Reading(target=target.name, at=at, ok=True, duration=rtt,
                       faults=frozenset({"pos.slow"}) if rtt > spec.slow_after else frozenset(),
                       values=values, detail={"de39": code, "stan": stan})
