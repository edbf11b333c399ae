"""net.icmp: several echo requests per check (count, spacing), loss ratio and RTT.

Raw ICMP sockets as root; unprivileged ICMP (``net.ipv4.ping_group_range``) otherwise;
a clear error where neither is allowed. Faults: ``network.down`` (all lost),
``network.loss`` (loss over ``loss_warn``), ``network.latency`` (RTT over ``latency_warn``).
"""
from __future__ import annotations

import os
import time
from typing import Literal, cast

import icmplib
from pydantic import Field, field_validator

from monitor.core.errors import ProbeConnectError, ProbeError
from monitor.core.reading import Reading
from monitor.core.target import Duration, Target, TargetSpec

from .base import Probe


class IcmpSpec(TargetSpec):
    kind: Literal["net.icmp"]
    address: str  # a host name or address, no port
    count: int = Field(3, ge=1, le=50)
    spacing: Duration = 0.2
    loss_warn: float = Field(0.2, ge=0, le=1)
    latency_warn: Duration | None = None

    @field_validator("address")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v) or (":" in v and not v.count(":") >= 2):
            raise ValueError("expected a host name or address without a port")
        return v


def packet_wait(spec: IcmpSpec) -> float:
    """How long to wait for each reply. icmplib sends one packet at a time and waits for
    its reply, so every lost packet costs this much: the whole train, all lost, must
    still end inside the target's timeout, or a check with lost packets would be cut
    off by the checker and read as ``network.down`` instead of ``network.loss``."""
    return max(0.05, (spec.timeout - spec.spacing * (spec.count - 1) - 0.1) / spec.count)


def judge(loss: float, rtt: float | None, spec: IcmpSpec) -> frozenset[str]:
    if loss >= 1.0:
        return frozenset({"network.down"})
    faults = set()
    if loss > spec.loss_warn:
        faults.add("network.loss")
    if spec.latency_warn is not None and rtt is not None and rtt > spec.latency_warn:
        faults.add("network.latency")
    return frozenset(faults)


class IcmpProbe(Probe):
    spec = IcmpSpec
    system = "network"
    faults = ("network.down", "network.loss", "network.latency")
    down_fault = "network.down"
    down_values = {"hallmon_net_loss_ratio": 1.0}

    async def check(self, target: Target) -> Reading:
        spec = cast(IcmpSpec, target.spec)
        wait = packet_wait(spec)
        at, t0 = time.time(), time.perf_counter()
        try:
            host = await icmplib.async_ping(spec.address, count=spec.count, interval=spec.spacing, timeout=wait,
                                            privileged=os.geteuid() == 0)
        except icmplib.SocketPermissionError as err:
            raise ProbeError(target.name, "ICMP not permitted: run as root, or allow unprivileged ICMP with "
                                          "sysctl net.ipv4.ping_group_range") from err
        except icmplib.NameLookupError as err:
            raise ProbeConnectError(target.name, f"cannot resolve {spec.address}") from err
        except icmplib.ICMPLibError as err:
            raise ProbeConnectError(target.name, f"{spec.address}: {err}") from err
        loss = host.packet_loss
        rtt = host.avg_rtt / 1000 if host.packets_received else None
        values = {"hallmon_net_loss_ratio": loss}
        if rtt is not None:
            values["hallmon_net_rtt_seconds"] = rtt
        faults = judge(loss, rtt, spec)
        return Reading(target=target.name, at=at, ok=loss < 1.0, duration=time.perf_counter() - t0, faults=faults,
                       values=values, detail={"sent": host.packets_sent, "received": host.packets_received},
                       error=f"{spec.address}: all {spec.count} packets lost" if loss >= 1.0 else None)
