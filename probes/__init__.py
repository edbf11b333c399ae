"""Probe kinds: the one explicit mapping from a target's ``kind`` to its probe class."""
from __future__ import annotations

from .base import Probe, ProbeContext
from .dns import DnsProbe
from .http import HttpProbe
from .icmp import IcmpProbe
from .iso8583 import Iso8583Probe
from .nut import NutProbe
from .queue import QueueProbe
from .snmp import SnmpProbe
from .tcp import PosTcpProbe, TcpProbe

PROBES: dict[str, type[Probe]] = {
    "net.tcp": TcpProbe,
    "system.http": HttpProbe,
    "ups.nut": NutProbe,
    "pos.iso8583": Iso8583Probe,
    "pos.tcp": PosTcpProbe,
    "queue.http": QueueProbe,
    "net.icmp": IcmpProbe,
    "net.dns": DnsProbe,
    "ups.snmp": SnmpProbe,
}

__all__ = ["PROBES", "Probe", "ProbeContext"]
