"""net.dns: resolve a name against a given server; a failure, a timeout or an answer
other than the expected one → ``network.dns``."""
from __future__ import annotations

import time
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
from pydantic import Field, field_validator

from monitor.errors import PeerError, ProbeTimeout, ProtocolError
from monitor.reading import Reading
from monitor.target import HostPort, Target, TargetSpec, split_hostport

from .base import Probe


class DnsSpec(TargetSpec):
    kind: Literal["net.dns"]
    address: HostPort  # the DNS server, e.g. 10.0.0.53:53
    query: str  # the name to resolve
    type: Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "PTR"] = "A"
    expect: tuple[str, ...] = Field(default_factory=tuple)  # answers that must all be present

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v):
            raise ValueError("expected a domain name")
        return v


class DnsProbe(Probe):
    spec = DnsSpec
    system = "network"
    faults = ("network.dns",)
    down_fault = "network.dns"

    async def check(self, target: Target) -> Reading:
        spec: DnsSpec = target.spec
        host, port = split_hostport(spec.address)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = [host], port
        resolver.lifetime = resolver.timeout = spec.timeout
        at, t0 = time.time(), time.perf_counter()
        try:
            answer = await resolver.resolve(spec.query, spec.type, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as err:
            raise PeerError(target.name, f"{spec.query}: NXDOMAIN from {spec.address}", "NXDOMAIN") from err
        except (dns.resolver.LifetimeTimeout, dns.exception.Timeout) as err:
            raise ProbeTimeout(target.name, f"{spec.query}: no answer from {spec.address}") from err
        except dns.resolver.NoNameservers as err:
            raise PeerError(target.name, f"{spec.query}: {spec.address} failed (SERVFAIL or refused)",
                            "SERVFAIL") from err
        except dns.exception.DNSException as err:
            raise ProtocolError(target.name, f"{spec.query}: {err}") from err
        elapsed = time.perf_counter() - t0
        got = sorted(r.to_text().rstrip(".") for r in answer) if answer.rrset is not None else []
        missing = [e for e in spec.expect if e.rstrip(".") not in got]
        error = None
        if not got:
            error = f"{spec.query} {spec.type}: empty answer"
        elif missing:
            error = f"{spec.query} {spec.type}: expected {', '.join(missing)}, got {', '.join(got)}"
        return Reading(target=target.name, at=at, ok=error is None, duration=elapsed,
                       faults=frozenset({"network.dns"}) if error else frozenset(),
                       values={"hallmon_dns_lookup_seconds": elapsed}, error=error,
                       detail={"answers": got})
