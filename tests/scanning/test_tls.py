"""The TLS, HSTS, mixed-content and HTTPS-redirect checks against HTTPS labs with certificates
generated at test time."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.labs import clean, vulnerable
from tests.labs.certs import LabCA, server_context
from tests.labs.server import serve
from tests.scanning.conftest import normalized, run

NOW = datetime.now(UTC)


def tls_findings(ca_file: Path | None, **leaf: Any) -> set[str]:
    ca_obj: LabCA = leaf.pop("ca")
    with serve(clean.app, tls=server_context(ca_obj.leaf(**leaf))) as base:
        result = run(base, checks=("tls",), trust_roots=ca_file)
    assert [o.status for o in result.outcomes] == ["ok"], result.outcomes
    return {f.type for f in result.findings}


@pytest.mark.parametrize(
    ("leaf", "trusted", "expected"),
    [
        ({}, True, set()),
        (
            {"not_after": NOW - timedelta(days=1), "not_before": NOW - timedelta(days=90)},
            True,
            {"tls-cert-expired"},
        ),
        ({"not_after": NOW + timedelta(days=10)}, True, {"tls-cert-expiring-soon"}),
        ({"not_before": NOW + timedelta(days=2)}, True, {"tls-cert-not-yet-valid"}),
        ({"dns": ("other.lab.invalid",), "ips": ()}, True, {"tls-cert-hostname-mismatch"}),
        ({"self_signed": True}, True, {"tls-cert-self-signed"}),
        ({}, False, {"tls-cert-untrusted"}),
    ],
    ids=[
        "valid",
        "expired",
        "expiring-soon",
        "not-yet-valid",
        "wrong-host",
        "self-signed",
        "untrusted-chain",
    ],
)
def test_certificate_problems(
    lab_ca: tuple[LabCA, Path], leaf: dict[str, Any], trusted: bool, expected: set[str]
) -> None:
    ca, ca_file = lab_ca
    assert tls_findings(ca_file if trusted else None, ca=ca, **leaf) == expected


def _legacy_supported() -> bool:
    try:
        server_context(LabCA().leaf(), legacy=True)
    except (ssl.SSLError, ValueError):
        return False
    return True


@pytest.mark.skipif(not _legacy_supported(), reason="this OpenSSL build cannot serve TLS 1.0/1.1")
def test_legacy_protocol_accepted_is_reported(lab_ca: tuple[LabCA, Path]) -> None:
    ca, ca_file = lab_ca
    with serve(clean.app, tls=server_context(ca.leaf(), legacy=True)) as base:
        result = run(base, checks=("tls",), trust_roots=ca_file)
    assert [o.status for o in result.outcomes] == ["ok"], result.outcomes
    assert [(f.type, f.evidence) for f in result.findings] == [
        ("tls-legacy-protocol", "handshake succeeded with TLSv1.1")
    ]


def test_https_page_without_hsts_with_mixed_content_and_no_redirect(
    lab_ca: tuple[LabCA, Path],
) -> None:
    ca, ca_file = lab_ca
    with (
        serve(vulnerable.app, tls=server_context(ca.leaf())) as https_base,
        serve(vulnerable.app) as http_base,
    ):
        http_port = int(http_base.rstrip("/").rsplit(":", 1)[1])
        result = run(
            https_base,
            checks=("hsts", "mixed-content", "https-redirect", "tls"),
            trust_roots=ca_file,
            http_port=http_port,
        )
    found = normalized(result, https_base)
    assert ("hsts-missing", "/", None) in found
    assert ("mixed-content", "/", "http://127.0.0.1:9/pixel.png") in found
    assert ("https-not-enforced", f"http://127.0.0.1:{http_port}/", None) in found
    assert len(found) == 3


def test_weak_hsts_is_reported(lab_ca: tuple[LabCA, Path]) -> None:
    from tests.labs.server import LabRequest, LabResponse

    def app(request: LabRequest) -> LabResponse:
        return LabResponse(
            200, "<html></html>", headers=[("Strict-Transport-Security", "max-age=300")]
        )

    ca, ca_file = lab_ca
    with serve(app, tls=server_context(ca.leaf())) as base:
        result = run(base, checks=("hsts",), trust_roots=ca_file)
    assert [(f.type, f.evidence) for f in result.findings] == [
        ("hsts-weak", "Strict-Transport-Security: max-age=300")
    ]
