"""Probe kinds: the one explicit mapping from a target's ``kind`` to its probe class."""
from __future__ import annotations

from .base import Probe, ProbeContext
from .dns import DnsProbe
from .http import HttpProbe
from .icmp import IcmpProbe
from .nut import NutProbe
from .pos import Iso8583Probe, PosTcpProbe
from .queue import QueueProbe
from .tcp import TcpProbe

PROBES: dict[str, type[Probe]] = {
    "net.tcp": TcpProbe,
    "system.http": HttpProbe,
    "ups.nut": NutProbe,
    "pos.iso8583": Iso8583Probe,
    "pos.tcp": PosTcpProbe,
    "queue.http": QueueProbe,
    "net.icmp": IcmpProbe,
    "net.dns": DnsProbe,
}

__all__ = ["PROBES", "Probe", "ProbeContext"]
