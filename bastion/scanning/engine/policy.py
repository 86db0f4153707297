"""Where a scan may send traffic: the address policy and the URL scope.

The address policy is enforced on every connection, not once per scan: the HTTP layer's network
backend resolves the host itself, checks every address, and connects to an address it checked.
A host whose DNS answer changes during a scan (DNS rebinding) is therefore refused on the next
connection, and a redirect to a metadata address is refused before any byte is sent to it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from bastion.scanning.engine.errors import AddressNotAllowed, OutOfScope, TargetUnreachable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata and platform endpoints that are not link-local.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wireserver
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "192.0.0.192",  # Oracle Cloud
    )
)
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
LOOPBACK_DEFAULT = ("127.0.0.0/8", "::1")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the system resolver (getaddrinfo), keeping the order it returns."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetUnreachable(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


def _parse_ip(value: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(value.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class AddressPolicy:
    """Refuse link-local, metadata, private and loopback addresses unless allow-listed.

    ``allow`` holds CIDR networks, single addresses or host names. A listed network or address
    is allowed whatever its kind (an administrator may list a metadata address on purpose); a
    listed host name may resolve to private or loopback addresses but never to link-local or
    metadata ones. ``allow_private`` admits every private and loopback address.
    """

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hostnames: frozenset[str] = frozenset()
    allow_private: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_allow_list(
        cls,
        allow: Iterable[str] = LOOPBACK_DEFAULT,
        *,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
    ) -> AddressPolicy:
        networks: list[IPNetwork] = []
        names: set[str] = set()
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(names), allow_private, resolver)

    def refusal(self, ip: IPAddress, host_allowed: bool = False) -> str | None:
        """Why ``ip`` is refused, or None when it may be contacted."""
        if any(ip in net for net in self.allow_networks):
            return None
        if ip in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if ip.is_link_local:
            return "a link-local address (cloud metadata lives there)"
        if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
            return "an unspecified, multicast or reserved address"
        if (
            ip.is_loopback
            or ip.is_private
            or (
                isinstance(ip, ipaddress.IPv4Address)
                and ip in ipaddress.ip_network("100.64.0.0/10")
            )
        ):
            if self.allow_private or host_allowed:
                return None
            return "a private or loopback address (allow-list it to scan a lab)"
        return None

    def check_host_name(self, host: str) -> None:
        name = host.lower().rstrip(".")
        if name in METADATA_HOSTNAMES and name not in self.allow_hostnames:
            raise AddressNotAllowed(f"{host} is a cloud metadata host name")

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return its addresses, or raise AddressNotAllowed.

        Every address of the answer must pass: a host that resolves to one public and one
        metadata address is refused, since the connection could land on either.
        """
        literal = _parse_ip(host)
        if literal is not None:
            reason = self.refusal(literal)
            if reason:
                raise AddressNotAllowed(f"{host} is {reason}")
            return [str(literal)]
        self.check_host_name(host)
        host_allowed = host.lower().rstrip(".") in self.allow_hostnames
        addresses = await self.resolver(host, port)
        if not addresses:
            raise TargetUnreachable(f"{host} resolves to no address")
        for address in addresses:
            ip = _parse_ip(address)
            if ip is None:
                raise TargetUnreachable(f"{host} resolved to an unparsable address {address!r}")
            reason = self.refusal(ip, host_allowed=host_allowed)
            if reason:
                raise AddressNotAllowed(f"{host} resolves to {ip}, {reason}")
        return addresses


@dataclass(frozen=True)
class Scope:
    """Which URLs a scan may request: the target's host (and extra hosts), then glob rules.

    ``include`` and ``exclude`` are shell-style globs matched against the whole URL, e.g.
    ``*/admin/*``. An empty ``include`` means every URL on an allowed host.
    """

    hosts: frozenset[str]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def for_target(
        cls,
        url: str,
        *,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        extra_hosts: Iterable[str] = (),
    ) -> Scope:
        host = (urlsplit(url).hostname or "").lower()
        hosts = {host, *(h.lower() for h in extra_hosts)}
        return cls(frozenset(hosts), tuple(include), tuple(exclude))

    def contains(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            return False
        if (parts.hostname or "").lower() not in self.hosts:
            return False
        if self.include and not any(fnmatchcase(url, pattern) for pattern in self.include):
            return False
        return not any(fnmatchcase(url, pattern) for pattern in self.exclude)

    def require(self, url: str) -> None:
        if not self.contains(url):
            raise OutOfScope(f"{url} is outside the scan scope")
