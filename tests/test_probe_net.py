"""net.icmp against 127.0.0.1 (and an address nothing answers), net.dns against a local DNS server."""
from __future__ import annotations

import pytest

from monitor.errors import PeerError, ProbeTimeout
from monitor.target import Target
from probes.dns import DnsProbe, DnsSpec
from icmplib import Host

from probes.icmp import IcmpProbe, IcmpSpec, judge
from simulators.dnsserver import DnsServer


def icmp(address: str, **kw) -> Target:
    return Target(spec=IcmpSpec(name="gw", kind="net.icmp", address=address, **kw), site="h", unit="u",
                  system="network")


async def test_icmp_loopback_answers():
    r = await IcmpProbe(None).check(icmp("127.0.0.1", count=3, spacing="10ms"))
    assert r.ok and r.faults == frozenset()
    assert r.values["hallmon_net_loss_ratio"] == 0.0
    assert 0 < r.values["hallmon_net_rtt_seconds"] < 1
    assert r.detail == {"sent": 3, "received": 3}


async def test_icmp_latency_threshold():
    r = await IcmpProbe(None).check(icmp("127.0.0.1", count=2, spacing="10ms", latency_warn="0s"))
    assert r.faults == {"network.latency"}


def test_icmp_judgement_of_loss():
    # nothing on loopback drops echoes, so the judgement is shown on icmplib's own Host values
    spec = icmp("10.0.0.1", count=4, loss_warn=0.2).spec
    faults, values, error = judge(Host("10.0.0.1", 4, []), spec)
    assert faults == {"network.down"} and values == {"hallmon_net_loss_ratio": 1.0} and "4 of 4" in error
    faults, values, _ = judge(Host("10.0.0.1", 4, [1.0, 2.0]), spec)
    assert faults == {"network.loss"} and values["hallmon_net_loss_ratio"] == 0.5
    assert values["hallmon_net_rtt_seconds"] == 0.0015
    faults, _, _ = judge(Host("10.0.0.1", 5, [1.0] * 4), spec)
    assert faults == frozenset()  # 20 % is not over loss_warn


def dns_target(server: DnsServer, query: str, **kw) -> Target:
    return Target(spec=DnsSpec(name="dns", kind="net.dns", address=server.address, query=query, timeout="1s", **kw),
                  site="h", unit="u", system="network")


async def test_dns_answers_and_wrong_answer():
    server = await DnsServer({("h2000.customs.test", "A"): ["10.1.2.3"]}).start()
    probe = DnsProbe(None)
    r = await probe.check(dns_target(server, "h2000.customs.test", expect=["10.1.2.3"]))
    assert r.ok and r.detail["answers"] == ["10.1.2.3"] and r.faults == frozenset()
    r = await probe.check(dns_target(server, "h2000.customs.test", expect=["10.9.9.9"]))
    assert not r.ok and r.faults == {"network.dns"} and "10.9.9.9" in r.error
    with pytest.raises(PeerError) as err:
        await probe.check(dns_target(server, "nosuch.customs.test"))
    assert err.value.code == "NXDOMAIN"
    server.mode = "servfail"
    with pytest.raises(PeerError):
        await probe.check(dns_target(server, "h2000.customs.test"))
    server.mode = "hang"
    with pytest.raises(ProbeTimeout):
        await probe.check(dns_target(server, "h2000.customs.test"))
    await server.stop()
