"""net.tcp: can a TCP connection be opened, and how long does it take."""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import struct
import time
from typing import ClassVar, Literal, cast

from monitor.core.errors import ProbeConnectError, os_reason
from monitor.core.reading import Reading
from monitor.core.target import Duration, HostPort, Target, TargetSpec, split_hostport

from .base import Probe

_LINGER_RST = struct.pack("ii", 1, 0)


@functools.lru_cache(maxsize=65536)
def _literal(host: str, port: int) -> tuple[int, tuple] | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return (socket.AF_INET6, (host, port)) if ip.version == 6 else (socket.AF_INET, (host, port))


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> tuple[int, tuple]:
    """An IP literal needs no lookup; a name is resolved on every check (DNS is part
    of what a person's client would go through)."""
    literal = _literal(host, port)
    if literal is not None:
        return literal
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve {host}")
    family, _, _, _, addr = infos[0]
    return family, addr


class TcpSpec(TargetSpec):
    kind: Literal["net.tcp"]
    address: HostPort
    latency_warn: Duration | None = None  # connect time over this → network.latency


class TcpProbe(Probe):
    spec: ClassVar[type[TcpSpec]] = TcpSpec
    system = "network"
    faults = ("network.down", "network.latency")
    down_fault = "network.down"
    slow_fault = "network.latency"
    up_values: dict[str, float] = {}

    async def check(self, target: Target) -> Reading:
        spec = cast(TcpSpec, target.spec)
        host, port = split_hostport(spec.address)
        loop = asyncio.get_running_loop()
        at, t0 = time.time(), time.perf_counter()
        sock = None
        try:
            family, addr = await _resolve(loop, host, port)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            # close with RST: no FIN handshake to wait for and no TIME_WAIT pile-up
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            await loop.sock_connect(sock, addr)
        except OSError as err:
            raise ProbeConnectError(target.name, f"connect {spec.address}: {os_reason(err)}") from err
        finally:
            if sock is not None:
                sock.close()
        connect = time.perf_counter() - t0
        faults: frozenset[str] = frozenset()
        if spec.latency_warn is not None and connect > spec.latency_warn:
            faults = frozenset({self.slow_fault})
        return Reading(target=target.name, at=at, ok=True, duration=connect, faults=faults,
                       values={"hallmon_tcp_connect_seconds": connect, **self.up_values})


class PosTcpSpec(TcpSpec):
    kind: Literal["pos.tcp"]  # type: ignore[assignment]  # a subclass names its own kind


class PosTcpProbe(TcpProbe):
    """pos.tcp: plain TCP reachability for POS links without an echo."""

    spec = PosTcpSpec
    system = "payment"
    faults = ("pos.link_down", "pos.slow")
    down_fault = "pos.link_down"
    slow_fault = "pos.slow"
    down_values = {"hallmon_pos_link_up": 0.0}
    up_values = {"hallmon_pos_link_up": 1.0}
