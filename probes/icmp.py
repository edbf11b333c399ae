"""net.icmp: several echo requests per check (``count``, ``spacing``); loss ratio and
average round trip. Raw ICMP sockets when running as root, unprivileged ICMP
("ping sockets", ``net.ipv4.ping_group_range``) otherwise; when neither is allowed the
check fails with an error saying so.

All lost → ``network.down``; loss over ``loss_warn`` → ``network.loss``; average RTT
over ``latency_warn`` → ``network.latency``.
"""
from __future__ import annotations

import os
import time
from typing import Literal

import icmplib
from pydantic import Field, field_validator

from monitor.errors import ProbeConnectError, ProbeError
from monitor.reading import Reading
from monitor.target import Duration, Target, TargetSpec

from .base import Probe


class IcmpSpec(TargetSpec):
    kind: Literal["net.icmp"]
    address: str  # a host name or an IP address, no port
    count: int = Field(3, ge=1, le=100)
    spacing: Duration = 0.2
    packet_timeout: Duration = 1.0
    loss_warn: float = Field(0.0, ge=0, lt=1)  # loss above this → network.loss
    latency_warn: Duration | None = None

    @field_validator("address")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v) or ("]" in v) or v.count(":") == 1:
            raise ValueError("expected a host or IP address without a port")
        return v


class IcmpProbe(Probe):
    spec = IcmpSpec
    system = "network"
    faults = ("network.down", "network.loss", "network.latency")
    down_fault = "network.down"
    down_values = {"hallmon_net_loss_ratio": 1.0}
    privileged = os.geteuid() == 0

    async def check(self, target: Target) -> Reading:
        spec: IcmpSpec = target.spec
        at, t0 = time.time(), time.perf_counter()
        try:
            host = await icmplib.async_ping(spec.address, count=spec.count, interval=spec.spacing,
                                            timeout=spec.packet_timeout, privileged=self.privileged)
        except icmplib.SocketPermissionError as err:
            raise ProbeError(target.name, "ICMP not permitted: run as root or allow unprivileged ping "
                                          "(sysctl net.ipv4.ping_group_range)") from err
        except icmplib.NameLookupError as err:
            raise ProbeConnectError(target.name, f"cannot resolve {spec.address}") from err
        except icmplib.ICMPLibError as err:
            raise ProbeConnectError(target.name, f"ping {spec.address}: {err}") from err
        faults, values, error = judge(host, spec)
        return Reading(target=target.name, at=at, ok=host.is_alive, duration=time.perf_counter() - t0,
                       faults=faults, values=values, error=error,
                       detail={"sent": host.packets_sent, "received": host.packets_received})


def judge(host: icmplib.Host, spec: IcmpSpec) -> tuple[frozenset[str], dict[str, float], str | None]:
    values = {"hallmon_net_loss_ratio": float(host.packet_loss)}
    faults: set[str] = set()
    error = None
    if not host.is_alive:
        faults.add("network.down")
        error = f"{spec.count} of {spec.count} echo requests to {spec.address} lost"
    else:
        values["hallmon_net_rtt_seconds"] = host.avg_rtt / 1000
        if host.packet_loss > spec.loss_warn:
            faults.add("network.loss")
        if spec.latency_warn is not None and host.avg_rtt / 1000 > spec.latency_warn:
            faults.add("network.latency")
    return frozenset(faults), values, error
