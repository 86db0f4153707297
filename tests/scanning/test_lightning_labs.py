"""Each lightning check against the vulnerable lab (ground truth file) and the clean lab."""

from __future__ import annotations

import pytest

from bastion.scanning.engine.checks import checks_for_profile, discover_checks
from tests.scanning.conftest import CleanLab, ground_truth, normalized, run

HTTPS_ONLY = {"tls", "hsts", "mixed-content"}  # tested on TLS labs in test_tls.py
LIGHTNING = sorted(c.name for c in checks_for_profile("lightning"))


@pytest.mark.parametrize("check", [c for c in LIGHTNING if c not in HTTPS_ONLY])
def test_check_finds_exactly_its_ground_truth(vulnerable_lab: str, check: str) -> None:
    declared = set(discover_checks()[check].finding_types)
    expected = {t for t in ground_truth("vulnerable") if t[0] in declared}
    assert expected, f"the vulnerable lab has nothing for {check} to find"

    result = run(vulnerable_lab, checks=(check,))

    assert [o.status for o in result.outcomes] == ["ok"], result.outcomes
    assert normalized(result, vulnerable_lab) == expected


def test_full_lightning_scan_matches_ground_truth(vulnerable_lab: str) -> None:
    from tests.labs import vulnerable

    result = run(vulnerable_lab)

    assert vulnerable.FORBIDDEN_HITS == []  # no logout link followed
    assert vulnerable.METHODS_SEEN <= {"GET", "HEAD", "OPTIONS", "TRACE"}  # never PUT/DELETE/POST

    assert result.error is None
    assert {o.name for o in result.outcomes if o.status != "ok"} == set()
    assert normalized(result, vulnerable_lab) == ground_truth("vulnerable")
    assert result.requests_sent <= 400  # the profile's request budget
    reflected = next(f for f in result.findings if f.type == "reflected-xss")
    assert reflected.details["context"] == "html"
    assert reflected.definition.cwe_id == "CWE-79"
    assert "Results for bx" in reflected.evidence


def test_clean_lab_produces_no_finding(clean_lab: CleanLab) -> None:
    result = run(clean_lab.https, trust_roots=clean_lab.ca_file, http_port=clean_lab.http_port)

    assert result.error is None
    assert [(o.name, o.status, o.message) for o in result.outcomes if o.status != "ok"] == []
    assert [(f.type, f.url, f.parameter, f.evidence) for f in result.findings] == []
    assert len(result.outcomes) == len(LIGHTNING)


def test_every_check_declares_known_finding_types_and_every_type_has_a_check() -> None:
    from bastion.scanning.engine.definitions import DEFINITIONS

    declared = [t for c in discover_checks().values() for t in c.finding_types]
    assert set(declared) <= set(DEFINITIONS)
    assert set(DEFINITIONS) - set(declared) == set()
    for definition in DEFINITIONS.values():
        assert definition.owasp.startswith("A") and ":2021-" in definition.owasp
        assert definition.remediation and definition.title


def test_missing_security_txt_is_reported() -> None:
    from tests.labs.server import LabRequest, LabResponse, serve

    def app(request: LabRequest) -> LabResponse:
        return LabResponse(404, "<html>not here</html>")

    with serve(app) as base:
        result = run(base, checks=("security-txt",))
    assert [(f.type, f.url) for f in result.findings] == [
        ("security-txt-missing", base + ".well-known/security.txt")
    ]
