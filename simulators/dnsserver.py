"""A small authoritative DNS server over UDP on loopback (dnspython's wire format):
``records`` maps (name, type) → list of answers; ``mode`` ok, servfail, or hang."""
from __future__ import annotations

import asyncio

import dns.message
import dns.rdatatype
import dns.rcode
import dns.rrset


class DnsServer(asyncio.DatagramProtocol):
    def __init__(self, records: dict[tuple[str, str], list[str]] | None = None):
        self.records = dict(records or {})
        self.mode = "ok"
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> "DnsServer":
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def datagram_received(self, data: bytes, addr) -> None:
        if self.mode == "hang":
            return
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = dns.message.make_response(query)
        q = query.question[0]
        name, rtype = q.name.to_text().rstrip("."), dns.rdatatype.to_text(q.rdtype)
        if self.mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rtype) in self.records:
            response.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", rtype, self.records[(name, rtype)]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self._transport.sendto(response.to_wire(), addr)

    async def stop(self) -> None:
        if self._transport:
            self._transport.close()
