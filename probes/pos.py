"""POS links to the bank acquirer: ``pos.iso8583`` sends a network-management echo
(MTI 0800, DE 7 transmission time, DE 11 STAN, DE 70 = 301) and expects 0810 with the
same STAN and DE 39 = 00; ``pos.tcp`` only checks that the acquirer's port accepts a
connection (terminals without an echo).

Refused, timeout, garbage, a wrong STAN or DE 39 ≠ 00 → ``pos.link_down`` (a DE 39
code goes into the reading's ``detail.code``); a round trip over ``slow_after`` →
``pos.slow``. Messages are encoded by ``pyiso8583`` with its ASCII spec.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timezone
from typing import Literal

import iso8583
from iso8583.specs import default_ascii
from pydantic import field_validator

from monitor.errors import PeerError, ProbeConnectError, ProtocolError
from monitor.reading import Reading
from monitor.target import Duration, HostPort, Target, TargetSpec, split_hostport

from .base import Probe
from .iso8583frame import MAX_MESSAGE, FrameError, Framing, LengthHeader, parse_tpdu

SPEC = default_ascii


class PosSpec(TargetSpec):
    kind: Literal["pos.iso8583"]
    address: HostPort
    length_header: LengthHeader = "binary2"
    tpdu: str | None = None  # 10 hex digits, e.g. 6000030000
    slow_after: Duration | None = None

    @field_validator("tpdu")
    @classmethod
    def _tpdu(cls, v: str | None) -> str | None:
        parse_tpdu(v)
        return v

    @property
    def framing(self) -> Framing:
        return Framing(self.length_header, parse_tpdu(self.tpdu))


def echo_request(stan: int, now: datetime) -> dict:
    return {"t": "0800", "7": now.strftime("%m%d%H%M%S"), "11": f"{stan:06d}", "70": "301"}


def encode(doc: dict) -> bytes:
    raw, _ = iso8583.encode(dict(doc), SPEC)
    return bytes(raw)


def decode(raw: bytes) -> dict:
    """``iso8583.DecodeError`` → ``FrameError``."""
    try:
        doc, _ = iso8583.decode(bytearray(raw), SPEC)
    except iso8583.DecodeError as err:
        raise FrameError(f"not an ISO 8583 message: {err}") from None
    return doc


class Iso8583Probe(Probe):
    spec = PosSpec
    system = "pos"
    faults = ("pos.link_down", "pos.slow")
    down_fault = "pos.link_down"
    down_values = {"hallmon_pos_link_up": 0.0}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._stan = itertools.count(int(time.time()) % 999_999 + 1)

    def next_stan(self) -> int:
        return next(self._stan) % 999_999 + 1

    async def check(self, target: Target) -> Reading:
        spec: PosSpec = target.spec
        framing = spec.framing
        host, port = split_hostport(spec.address)
        stan = self.next_stan()
        at, t0 = time.time(), time.perf_counter()
        request = framing.frame(encode(echo_request(stan, datetime.now(timezone.utc))))
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_MESSAGE)
        except OSError as err:
            raise ProbeConnectError(target.name, f"connect acquirer {spec.address}: {err.strerror or err}") from err
        try:
            writer.write(request)
            await writer.drain()
            answer = decode(await framing.read(reader))
        except FrameError as err:
            raise ProtocolError(target.name, f"acquirer {spec.address}: {err}") from err
        except (ConnectionError, OSError) as err:
            raise ProbeConnectError(target.name, f"acquirer {spec.address}: {err}") from err
        finally:
            writer.transport.abort()
        rtt = time.perf_counter() - t0
        if answer.get("t") != "0810":
            raise ProtocolError(target.name, f"acquirer {spec.address}: expected MTI 0810, got {answer.get('t')}")
        if answer.get("11") != f"{stan:06d}":
            raise ProtocolError(target.name, f"acquirer {spec.address}: STAN {answer.get('11')} does not match "
                                             f"{stan:06d}")
        code = answer.get("39")
        if code != "00":
            raise PeerError(target.name, f"acquirer {spec.address}: echo answered DE 39 = {code}", str(code))
        faults = frozenset({"pos.slow"}) if spec.slow_after is not None and rtt > spec.slow_after else frozenset()
        return Reading(target=target.name, at=at, ok=True, duration=rtt, faults=faults,
                       values={"hallmon_pos_link_up": 1.0, "hallmon_pos_echo_rtt_seconds": rtt},
                       detail={"code": code, "stan": f"{stan:06d}"})


class PosTcpSpec(TargetSpec):
    kind: Literal["pos.tcp"]
    address: HostPort


class PosTcpProbe(Probe):
    spec = PosTcpSpec
    system = "pos"
    faults = ("pos.link_down",)
    down_fault = "pos.link_down"
    down_values = {"hallmon_pos_link_up": 0.0}

    async def check(self, target: Target) -> Reading:
        spec: PosTcpSpec = target.spec
        host, port = split_hostport(spec.address)
        at, t0 = time.time(), time.perf_counter()
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError as err:
            raise ProbeConnectError(target.name, f"connect {spec.address}: {err.strerror or err}") from err
        writer.transport.abort()
        return Reading(target=target.name, at=at, ok=True, duration=time.perf_counter() - t0,
                       values={"hallmon_pos_link_up": 1.0})
