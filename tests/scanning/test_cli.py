"""``bastion scan`` as a user runs it: a real process against the labs, JSON and SARIF files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from tests.scanning.conftest import CleanLab

SCHEMA = Path(__file__).with_name("schemas") / "sarif-2.1.0-rtm.5.json"
BASTION = [sys.executable, "-m", "bastion"]


def bastion_scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, "scan", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_scan_writes_json_and_valid_sarif_and_fails_on_high(
    vulnerable_lab: str, tmp_path: Path
) -> None:
    out_json, out_sarif = tmp_path / "findings.json", tmp_path / "findings.sarif"

    proc = bastion_scan(
        vulnerable_lab,
        "--profile",
        "lightning",
        "--json",
        str(out_json),
        "--sarif",
        str(out_sarif),
        "--fail-on",
        "high",
    )

    assert proc.returncode == 1, proc.stderr
    assert "HIGH     reflected-xss CWE-79 GET" in proc.stdout
    report = json.loads(out_json.read_text())
    xss = next(f for f in report["findings"] if f["type"] == "reflected-xss")
    assert xss["severity"] == "high" and xss["cwe"] == "CWE-79"
    assert xss["url"] == vulnerable_lab + "search" and xss["method"] == "GET"
    assert xss["parameter"] == "q" and "Results for bx" in xss["evidence"]
    assert xss["fingerprint"].startswith("finding:v1:")
    for finding in report["findings"]:
        assert {
            "type",
            "severity",
            "cwe",
            "url",
            "method",
            "parameter",
            "evidence",
        } <= finding.keys()
        assert finding["cwe"].startswith("CWE-")

    sarif = json.loads(out_sarif.read_text())
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    run = sarif["runs"][0]
    assert len(run["results"]) == len(report["findings"])
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    xss_result = next(r for r in run["results"] if r["ruleId"] == "reflected-xss")
    assert xss_result["level"] == "error"
    assert xss_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(
        "/search"
    )


def test_fail_on_threshold_above_every_finding_exits_zero(vulnerable_lab: str) -> None:
    proc = bastion_scan(vulnerable_lab, "--check", "security-txt", "--fail-on", "low")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "security-txt-invalid" in proc.stdout


def test_clean_lab_exits_zero_with_empty_valid_sarif(clean_lab: CleanLab, tmp_path: Path) -> None:
    out_sarif = tmp_path / "clean.sarif"
    proc = bastion_scan(
        clean_lab.https,
        "--fail-on",
        "info",
        "--sarif",
        str(out_sarif),
        "--ca-file",
        str(clean_lab.ca_file),
        "--http-port",
        str(clean_lab.http_port),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout
    sarif = json.loads(out_sarif.read_text())
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    assert sarif["runs"][0]["results"] == []


def test_refused_target_exits_two_without_traffic(tmp_path: Path) -> None:
    out_json = tmp_path / "refused.json"
    proc = bastion_scan(
        "http://169.254.169.254/latest/meta-data/", "--allow-private", "--json", str(out_json)
    )
    assert proc.returncode == 2
    assert "link-local" in proc.stderr
    assert json.loads(out_json.read_text())["requests_sent"] == 0


def test_bad_arguments_are_reported(vulnerable_lab: str) -> None:
    assert bastion_scan(vulnerable_lab, "--fail-on", "severe").returncode == 2
    proc = bastion_scan(vulnerable_lab, "--profile", "nope")
    assert proc.returncode == 2 and "unknown profile" in proc.stderr
