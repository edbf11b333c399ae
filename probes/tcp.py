"""net.tcp: can a TCP connection be opened, and how long does it take."""
from __future__ import annotations

import asyncio
import os
import time
from typing import Literal

from monitor.errors import ProbeConnectError
from monitor.reading import Reading
from monitor.target import Duration, HostPort, Target, TargetSpec, split_hostport

from .base import Probe


class TcpSpec(TargetSpec):
    kind: Literal["net.tcp"]
    address: HostPort
    latency_warn: Duration | None = None  # connect time over this → network.latency


class TcpProbe(Probe):
    spec = TcpSpec
    system = "network"
    faults = ("network.down", "network.latency")
    down_fault = "network.down"

    async def check(self, target: Target) -> Reading:
        spec: TcpSpec = target.spec
        host, port = split_hostport(spec.address)
        at, t0 = time.time(), time.perf_counter()
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError as err:
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise ProbeConnectError(target.name, f"connect {spec.address}: {reason}") from err
        connect = time.perf_counter() - t0
        writer.transport.abort()  # no FIN handshake to wait for: the probe is the connect
        faults = frozenset()
        if spec.latency_warn is not None and connect > spec.latency_warn:
            faults = frozenset({"network.latency"})
        return Reading(target=target.name, at=at, ok=True, duration=connect, faults=faults,
                       values={"hallmon_tcp_connect_seconds": connect})
