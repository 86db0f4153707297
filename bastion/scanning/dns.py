"""DNS TXT ownership proof for scan targets (dnspython).

The owner publishes ``bastion-verification=<token>`` as a TXT record on the target's host or on
``_bastion.<host>``. Lookups go to the system's resolvers, or to the one named by
``BASTION_DNS_RESOLVER`` (``IP`` or ``IP:PORT``, ``[IPv6]:PORT``; tests point it at a DNS server
on loopback). A malformed value fails loudly; a resolver that does not answer means "not
proven", with the reason, never a crash.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.core.exceptions import ImproperlyConfigured

ENV = "BASTION_DNS_RESOLVER"
RECORD_PREFIX = "bastion-verification="
SUBDOMAIN = "_bastion"
LIFETIME_S = 5.0


@dataclass(frozen=True)
class TxtProof:
    found: bool
    name: str = ""  # the name whose TXT record carried the token
    problem: str = ""  # why nothing was found (for the person verifying)


def _nameserver(value: str) -> tuple[str, int]:
    host, port = value, 53
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else -1
    elif value.count(":") == 1:
        host, _, number = value.partition(":")
        port = int(number) if number.isdigit() else -1
    try:
        ipaddress.ip_address(host)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ImproperlyConfigured(f"{ENV}: {value!r} is not IP or IP:PORT (e.g. 127.0.0.1:5353)")
    return host, port


def resolver() -> dns.resolver.Resolver:
    value = os.environ.get(ENV, "").strip()
    if not value:
        system = dns.resolver.Resolver()
        system.lifetime = LIFETIME_S
        return system
    host, port = _nameserver(value)
    custom = dns.resolver.Resolver(configure=False)
    custom.nameservers = [host]
    custom.port = port
    custom.lifetime = LIFETIME_S
    return custom


def txt_values(name: str, using: dns.resolver.Resolver) -> list[str]:
    """The TXT strings of ``name`` (each record's character-strings joined), [] if none."""
    try:
        answer = using.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def find_token(host: str, token: str) -> TxtProof:
    """Look for ``bastion-verification=<token>`` on ``host`` and ``_bastion.<host>``."""
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return TxtProof(False, problem="an IP address has no DNS name to carry a TXT record")
    using = resolver()
    expected = RECORD_PREFIX + token
    for name in (host, f"{SUBDOMAIN}.{host}"):
        try:
            values = txt_values(name, using)
        except dns.exception.DNSException as exc:
            return TxtProof(False, problem=f"DNS lookup of {name} failed: {exc}")
        if any(v.strip() == expected for v in values):
            return TxtProof(True, name=name)
    return TxtProof(False, problem=f"no TXT record {expected!r} on {host} or {SUBDOMAIN}.{host}")
