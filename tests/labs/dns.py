"""A real DNS server on loopback (dnslib, UDP) answering TXT queries from a mutable zone, for
DNS TXT target verification: point ``BASTION_DNS_RESOLVER`` at ``127.0.0.1:<port>``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


@dataclass
class Zone(BaseResolver):  # type: ignore[misc]
    """name (without the trailing dot, lower case) -> TXT strings; unknown names: NXDOMAIN."""

    txt: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.queries.append(name)
        if name not in self.txt:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in self.txt[name]:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=1))
        return reply


@contextlib.contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serve ``zone`` on a free UDP port of 127.0.0.1; yields ``"127.0.0.1:<port>"``."""
    server = DNSServer(
        zone,
        address="127.0.0.1",
        port=0,
        logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"),
    )
    server.start_thread()
    try:
        yield f"127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.stop()
        server.server.server_close()
