"""net.dns: resolve a name against a given DNS server; ``network.dns`` when the lookup
fails or the answer is not what is expected."""
from __future__ import annotations

import time
from typing import Literal, cast

import dns.asyncresolver
import dns.exception
import dns.resolver
from pydantic import Field

from monitor.core.errors import ProbeConnectError, ProbeTimeout, ProtocolError
from monitor.core.reading import Reading
from monitor.core.target import HostPort, Target, TargetSpec, split_hostport

from .base import Probe


class DnsSpec(TargetSpec):
    kind: Literal["net.dns"]
    address: HostPort  # the DNS server, e.g. 127.0.0.1:53
    query: str  # the name to resolve
    record: Literal["A", "AAAA", "CNAME", "MX", "TXT"] = "A"
    expect: tuple[str, ...] = Field(default_factory=tuple)  # answers that must be among the records


class DnsProbe(Probe):
    spec = DnsSpec
    system = "network"
    faults = ("network.dns",)
    down_fault = "network.dns"

    async def check(self, target: Target) -> Reading:
        spec = cast(DnsSpec, target.spec)
        host, port = split_hostport(spec.address)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
        resolver.lifetime = spec.timeout
        at, t0 = time.time(), time.perf_counter()
        try:
            answer = await resolver.resolve(spec.query, spec.record, raise_on_no_answer=True)
        except dns.resolver.NXDOMAIN as err:
            raise ProtocolError(target.name, f"{spec.query}: no such name at {spec.address}") from err
        except dns.resolver.NoAnswer as err:
            raise ProtocolError(target.name, f"{spec.query}: no {spec.record} record at {spec.address}") from err
        except dns.exception.Timeout as err:
            raise ProbeTimeout(target.name, f"{spec.address}: no answer for {spec.query}") from err
        except (dns.exception.DNSException, OSError) as err:
            raise ProbeConnectError(target.name, f"{spec.address}: {err}") from err
        took = time.perf_counter() - t0
        records = sorted(r.to_text().rstrip(".") for r in answer)
        missing = [e for e in spec.expect if e.rstrip(".") not in records]
        error = f"{spec.query} answered {records}, expected {list(spec.expect)}" if missing else None
        return Reading(target=target.name, at=at, ok=True, duration=took,
                       faults=frozenset({"network.dns"}) if missing else frozenset(),
                       values={"hallmon_dns_lookup_seconds": took}, detail={"answers": records}, error=error)
