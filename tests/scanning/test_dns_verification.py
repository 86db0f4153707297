"""DNS TXT ownership proof against a real DNS server on loopback (dnslib), reached through
``BASTION_DNS_RESOLVER``."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.scanning import dns as scan_dns
from bastion.scanning import services
from bastion.scanning.models import Target, VerificationMethod
from tests.factories import make_org, make_project, make_user
from tests.labs.dns import Zone, dns_server

# localhost:9 refuses connections (no proof by file or header) and is not on the allow-list
# by name, so only the TXT record can verify it.
BASE = "http://localhost:9/"


@pytest.fixture
def target() -> tuple[Principal, Target]:
    owner = make_user()
    project = make_project(make_org(owner))
    principal = Principal.of_user(owner)
    return principal, services.create_target(principal, project, name="shop", base_url=BASE)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["localhost", "_bastion.localhost"])
def test_a_txt_record_on_the_host_or_its_bastion_name_verifies(
    target: tuple[Principal, Target], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal, shop = target
    zone = Zone({name: ["v=spf1 -all", f"bastion-verification={shop.verification_token}"]})
    with dns_server(zone) as address:
        monkeypatch.setenv(scan_dns.ENV, address)
        services.verify_target(principal, shop)
    shop.refresh_from_db()
    assert shop.verification_method == VerificationMethod.DNS and shop.verified_at is not None
    event = AuditEvent.objects.get(action="scan_target.verify")
    assert event.changes == {"method": "dns", "dns_name": name}
    assert "localhost" in zone.queries


@pytest.mark.django_db
def test_a_wrong_token_or_a_silent_resolver_is_refused_clearly(
    target: tuple[Principal, Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    principal, shop = target
    with dns_server(Zone({"localhost": ["bastion-verification=someone-else"]})) as address:
        monkeypatch.setenv(scan_dns.ENV, address)
        with pytest.raises(ValidationError, match="no TXT record"):
            services.verify_target(principal, shop)
    # The server is gone: the lookup times out and says so.
    monkeypatch.setattr(scan_dns, "LIFETIME_S", 0.5)
    with pytest.raises(ValidationError, match="DNS lookup of localhost failed"):
        services.verify_target(principal, shop)
    shop.refresh_from_db()
    assert shop.verified_at is None
    assert not AuditEvent.objects.filter(action="scan_target.verify").exists()


@pytest.mark.parametrize("value", ["localhost:53", "127.0.0.1:x", "127.0.0.1:0", "[::1]5353"])
def test_a_malformed_resolver_setting_fails_loudly(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(scan_dns.ENV, value)
    with pytest.raises(ImproperlyConfigured, match=scan_dns.ENV):
        scan_dns.resolver()


def test_resolver_setting_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("127.0.0.1", ("127.0.0.1", 53)), ("[::1]:5353", ("::1", 5353))]:
        monkeypatch.setenv(scan_dns.ENV, value)
        resolver = scan_dns.resolver()
        assert (resolver.nameservers[0], resolver.port) == expected


def test_an_ip_address_host_cannot_carry_a_txt_record() -> None:
    proof = scan_dns.find_token("127.0.0.1", "token")
    assert not proof.found and "IP address" in proof.problem
