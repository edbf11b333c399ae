"""net.icmp against 127.0.0.1, net.dns against a local DNS server speaking the real
protocol, and TLS certificate expiry on system.http with certificates made here."""
import asyncio
import ssl
from datetime import datetime, timedelta, timezone

import dns.message
import dns.rcode
import dns.rrset
import pytest
import trustme
from aiohttp import web

from monitor.core.target import Target
from probes import PROBES
from probes.icmp import judge, packet_wait


def target(spec: dict) -> Target:
    cls = PROBES[spec["kind"]]
    return Target(spec=cls.spec.model_validate({"name": "t", **spec}), site="s", unit="u", system=cls.system)




async def test_icmp_to_loopback(checker):
    r = await checker.check(target({"kind": "net.icmp", "address": "127.0.0.1", "count": 3, "spacing": "50ms"}))
    assert r.ok and r.faults == frozenset(), r.error
    assert r.values["hallmon_net_loss_ratio"] == 0.0 and 0 < r.values["hallmon_net_rtt_seconds"] < 0.1
    assert r.detail == {"sent": 3, "received": 3}


def test_icmp_judgement():
    spec = PROBES["net.icmp"].spec.model_validate({"name": "t", "kind": "net.icmp", "address": "127.0.0.1",
                                                   "loss_warn": 0.2, "latency_warn": "100ms"})
    assert judge(1.0, None, spec) == {"network.down"}
    assert judge(0.5, 0.01, spec) == {"network.loss"}
    assert judge(0.0, 0.2, spec) == {"network.latency"}
    assert judge(0.1, 0.01, spec) == frozenset()


class DnsServer(asyncio.DatagramProtocol):
    """Answers A queries for hall-h2000.example.invalid from a table."""

    def __init__(self, records):
        self.records = records

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        name = query.question[0].name.to_text()
        if name in self.records:
            reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", *self.records[name]))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(reply.to_wire(), addr)


@pytest.mark.parametrize("count, spacing, timeout", [(3, "200ms", "5s"), (10, "100ms", "2s"), (1, "1s", "1s")])
def test_a_train_of_lost_packets_ends_inside_the_timeout(count, spacing, timeout):
    # icmplib waits for each reply in turn: all lost costs count waits plus the spacing
    spec = target({"kind": "net.icmp", "address": "127.0.0.1", "count": count, "spacing": spacing,
                   "timeout": timeout, "interval": "10s"}).spec
    assert count * packet_wait(spec) + spec.spacing * (count - 1) < spec.timeout


async def test_dns_lookup_expectation_and_failure(checker):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: DnsServer({"hall-h2000.example.invalid.": ["192.0.2.3"]}), local_addr=("127.0.0.1", 0))
    server = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    try:
        ok = await checker.check(target({"kind": "net.dns", "address": server, "query": "hall-h2000.example.invalid",
                                         "expect": ["192.0.2.3"]}))
        assert ok.ok and ok.faults == frozenset() and ok.detail["answers"] == ["192.0.2.3"]
        wrong = await checker.check(target({"kind": "net.dns", "address": server,
                                            "query": "hall-h2000.example.invalid", "expect": ["192.0.2.99"]}))
        assert wrong.faults == {"network.dns"} and "expected ['192.0.2.99']" in wrong.error
        missing = await checker.check(target({"kind": "net.dns", "address": server, "query": "nope.example.invalid"}))
        assert missing.faults == {"network.dns"} and "no such name" in missing.error
    finally:
        transport.close()
    silent = await checker.check(target({"kind": "net.dns", "address": server, "query": "x.example.invalid",
                                         "timeout": "500ms", "interval": "1s"}))
    assert silent.faults == {"network.dns"}


async def tls_server(ca: trustme.CA, not_after: datetime):
    cert = ca.issue_cert("127.0.0.1", not_after=not_after)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    app = web.Application()
    app.router.add_get("/", lambda r: web.json_response({"status": "UP"}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    return runner, f"https://127.0.0.1:{runner.addresses[0][1]}/"


async def test_certificate_expiry_is_exported_and_judged(checker, tmp_path):
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=5)
    later = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=90)
    for not_after, expect in ((soon, {"system.cert_expiring"}), (later, frozenset())):
        runner, url = await tls_server(ca, not_after)
        try:
            r = await checker.check(target({"kind": "system.http", "url": url, "ca_file": str(ca_file)}))
            assert r.ok and r.faults == expect
            assert r.values["hallmon_tls_cert_expiry_timestamp_seconds"] == not_after.timestamp()
            # not trusted without the CA: down, with a clear reason
            r = await checker.check(target({"kind": "system.http", "url": url}))
            assert r.faults == {"system.down"} and "certificate" in r.error
            # verification off still reads the expiry
            r = await checker.check(target({"kind": "system.http", "url": url, "tls_verify": False, "cert_warn": "100d"}))
            assert r.faults == {"system.cert_expiring"}
        finally:
            await runner.cleanup()
