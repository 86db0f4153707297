"""Address policy and scope: refused before any traffic, on every connection and redirect."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from bastion.scanning.engine.errors import AddressNotAllowed, OutOfScope
from bastion.scanning.engine.http import HttpClient
from bastion.scanning.engine.policy import AddressPolicy, Scope
from tests.labs.server import LabRequest, LabResponse, serve
from tests.scanning.conftest import run


def refusal(ip: str, **kwargs: object) -> str | None:
    policy = AddressPolicy.from_allow_list(**kwargs)  # type: ignore[arg-type]
    return policy.refusal(ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    ("ip", "refused"),
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("93.184.215.14", False),
        ("10.1.2.3", True),
        ("192.168.1.10", True),
        ("172.16.0.1", True),
        ("100.64.0.1", True),
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("100.100.100.200", True),
        ("fd00:ec2::254", True),
        ("0.0.0.0", True),  # noqa: S104 - a policy input, not a bind address
    ],
)
def test_default_policy(ip: str, refused: bool) -> None:
    assert (refusal(ip) is not None) is refused


def test_allow_private_never_allows_link_local_or_metadata() -> None:
    assert refusal("10.1.2.3", allow_private=True) is None
    assert refusal("169.254.169.254", allow_private=True) is not None
    assert refusal("168.63.129.16", allow_private=True) is not None


def test_explicit_allow_list_entry_wins() -> None:
    assert refusal("169.254.10.10", allow=["169.254.10.0/24"]) is None
    assert refusal("127.0.0.1", allow=[]) is not None


def test_ipv4_mapped_ipv6_is_unwrapped() -> None:
    policy = AddressPolicy.from_allow_list()
    with pytest.raises(AddressNotAllowed):
        asyncio.run(policy.resolve("::ffff:169.254.169.254", 80))


def test_host_names_are_resolved_and_every_address_checked() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"mixed.test": ["127.0.0.1", "169.254.169.254"], "lab.test": ["127.0.0.1"]}[host]

    policy = AddressPolicy.from_allow_list(resolver=resolver)
    assert asyncio.run(policy.resolve("lab.test", 80)) == ["127.0.0.1"]
    with pytest.raises(AddressNotAllowed, match=r"169\.254\.169\.254"):
        asyncio.run(policy.resolve("mixed.test", 80))
    with pytest.raises(AddressNotAllowed, match="metadata"):
        asyncio.run(policy.resolve("metadata.google.internal", 80))


def test_scope_include_exclude() -> None:
    scope = Scope.for_target(
        "https://app.test/",
        include=["*/shop/*"],
        exclude=["*/shop/admin*"],
        extra_hosts=["api.app.test"],
    )
    assert scope.contains("https://app.test/shop/cart")
    assert scope.contains("http://api.app.test/shop/x")
    assert not scope.contains("https://app.test/blog/")
    assert not scope.contains("https://app.test/shop/admin/users")
    assert not scope.contains("https://other.test/shop/cart")
    assert not scope.contains("ftp://app.test/shop/x")


class Recorder:
    def __init__(self, redirect_to: str | None = None) -> None:
        self.paths: list[str] = []
        self.redirect_to = redirect_to

    def __call__(self, request: LabRequest) -> LabResponse:
        self.paths.append(request.path)
        if self.redirect_to and request.path == "/jump":
            return LabResponse(302, b"", None, [("Location", self.redirect_to)])
        return LabResponse(200, "<html>ok</html>", headers=[("Connection", "close")])


def test_dns_change_during_scan_is_refused_on_the_next_connection() -> None:
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    lab = Recorder()
    with serve(lab) as base:
        port = base.rstrip("/").rsplit(":", 1)[1]
        url = f"http://rebind.test:{port}/"

        async def scenario() -> None:
            policy = AddressPolicy.from_allow_list(resolver=rebinding)
            async with HttpClient(policy, Scope.for_target(url)) as http:
                first = await http.get(url)
                assert first.status == 200
                with pytest.raises(AddressNotAllowed, match=r"169\.254\.169\.254"):
                    await http.get(url + "second")

        asyncio.run(scenario())
    assert lab.paths == ["/"]  # the second request never reached anything


def test_redirect_to_a_forbidden_address_is_refused_and_out_of_scope_not_followed() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["169.254.169.254"] if host == "meta.test" else ["127.0.0.1"]

    with serve(Recorder(redirect_to="http://meta.test/latest/meta-data/")) as base:

        async def scenario() -> None:
            policy = AddressPolicy.from_allow_list(resolver=resolver)
            scope = Scope.for_target(base, extra_hosts=["meta.test"])
            async with HttpClient(policy, scope) as http:
                with pytest.raises(AddressNotAllowed):
                    await http.get(base + "jump", follow_redirects=True)
            async with HttpClient(policy, Scope.for_target(base)) as http:
                response = await http.get(base + "jump", follow_redirects=True)
                assert response.status == 302  # left the scope: reported, not followed
                with pytest.raises(OutOfScope):
                    await http.get("http://meta.test/")

        asyncio.run(scenario())


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/", "http://10.0.0.1/", "http://[fe80::1]/"]
)
def test_scan_of_a_refused_target_sends_nothing(target: str) -> None:
    result = run(target)
    assert result.error is not None and "AddressNotAllowed" in result.error
    assert result.requests_sent == 0
    assert result.findings == ()


def test_scan_refuses_loopback_when_not_allow_listed() -> None:
    lab = Recorder()
    with serve(lab) as base:
        result = run(base, allow_hosts=())
    assert result.error is not None and "AddressNotAllowed" in result.error
    assert lab.paths == []
