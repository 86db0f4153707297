"""``bastion test import|run|export`` as separate processes, with no server and no database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from tests.browser.conftest import SAMPLES
from tests.labs.browser_site.server import LabServer

BASTION = str(Path(sys.executable).with_name("bastion"))


def _bastion(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASTION, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_import_writes_yaml_and_reports_unmapped_commands(tmp_path: Path) -> None:
    done = _bastion("test", "import", str(SAMPLES / "lab.side"), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dialogs-and-frames.yaml",
        "greet.yaml",
        "legacy-and-unsupported.yaml",
    ]
    assert "unmapped: Legacy and unsupported #3: mouseDownAt (no equivalent step)" in done.stdout
    assert "3 test(s) imported from selenium-ide, 4 command(s) not mapped" in done.stdout
    bad = _bastion("test", "import", str(SAMPLES / "upload.txt"))
    assert bad.returncode == 2 and "not a JSON file" in bad.stderr


def test_run_imported_files_with_reports_and_artifacts(lab: LabServer, tmp_path: Path) -> None:
    assert (
        _bastion("test", "import", str(SAMPLES / "lab.side"), "--out", str(tmp_path)).returncode
        == 0
    )
    out_json, out_junit, artifacts = tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "art"
    done = _bastion(
        "test", "run", str(tmp_path / "greet.yaml"), str(tmp_path / "legacy-and-unsupported.yaml"),
        "--base-url", lab.url, "--var", "who=Ada", "--json", str(out_json), "--junit", str(out_junit),
        "--artifacts", str(artifacts), "--concurrency", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[ok  ] Greet 37.3 click (" in done.stdout  # a step of the imported module
    assert "[ok  ] Greet 37 module (" in done.stdout
    assert "2/2 test(s) passed" in done.stdout
    results = json.loads(out_json.read_text())
    assert [r["status"] for r in results] == ["passed", "passed"]
    root = ElementTree.fromstring(out_junit.read_text())  # noqa: S314 - our own output
    assert [s.get("name") for s in root.iter("testsuite")] == ["Greet", "Legacy and unsupported"]
    assert (artifacts / "001-greet" / "video.webm").is_file()
    assert (artifacts / "001-greet" / results[0]["final_screenshot"]).is_file()


def test_run_a_ghost_export_directly_with_a_secret(lab: LabServer) -> None:
    done = _bastion(
        "test", "run", str(SAMPLES / "ghost-suite.json"), "--base-url", lab.url, "--var", "user=ada",
        "--secret", "password", "--no-video",
        env={"password": "s3cret-pass"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unmapped: Sign in and greet #9: assertAccessibility" in done.stderr
    assert "s3cret-pass" not in done.stdout + done.stderr
    assert "1/1 test(s) passed" in done.stdout


def test_run_exits_1_on_failure_and_2_on_invalid_input(lab: LabServer, tmp_path: Path) -> None:
    failing = tmp_path / "failing.yaml"
    failing.write_text(
        "name: failing\nstart_url: /form\ntimeout_ms: 2000\nsteps:\n  - click: '#nope'\n"
    )
    done = _bastion("test", "run", str(failing), "--base-url", lab.url, "--no-video")
    assert done.returncode == 1
    assert "FAILED failing" in done.stdout and "no element matches css=#nope" in done.stdout
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("name: invalid\nsteps:\n  - action: click\n    name: Go\n")
    done = _bastion("test", "run", str(invalid))
    assert done.returncode == 2
    assert 'step 1 "Go" (click): field "target": required' in done.stderr
    missing_secret = _bastion("test", "run", str(failing), "--secret", "NOT_SET_ANYWHERE_42")
    assert missing_secret.returncode == 2 and "NOT_SET_ANYWHERE_42" in missing_secret.stderr


def test_exported_playwright_script_runs_on_its_own(lab: LabServer, tmp_path: Path) -> None:
    (tmp_path / "upload.txt").write_bytes((SAMPLES / "upload.txt").read_bytes())
    (tmp_path / "login.yaml").write_text(
        "name: login\nimport_only: true\nsteps:\n  - goto: /login\n"
        "  - type: '#username'\n    value: '{{user}}'\n  - type: '#password'\n    value: s3cret-pass\n"
        "  - click: 'role=button[name=\"Sign in\"]'\n"
    )
    (tmp_path / "main.yaml").write_text(
        """name: exported
start_url: /form
timeout_ms: 3000
variables: {who: Ada}
steps:
  - type: ['#missing', '#name']
    value: '{{who}}'
  - select: '#color'
    value: label=Green
  - check: '#agree'
  - click: 'role=button[name="Greet"]'
  - assert_text: 'Hello, Ada (g) agreed'
    target: '#out'
  - store: greeting
    target: '#out'
  - assert_variable: greeting
    value: Ada
    match: contains
  - if: "return document.title === 'Form'"
    steps: [{store: branch, value: 'yes'}]
    else_steps: [{store: branch, value: 'no'}]
  - assert_variable: branch
    value: 'yes'
  - repeat: 2
    steps: [{execute_js: "window.n = (window.n || 0) + 1"}]
  - assert_js: return window.n === 2
  - click: '#nothing'
    optional: true
    timeout_ms: 300
  - module: login
    params: {user: grace}
  - assert_text: Welcome, grace
    target: '#welcome'
  - goto: /dialogs
  - accept_dialog: Linus
  - click: '#prompt'
  - assert_text: name=Linus
    target: '#result'
  - goto: /upload
  - upload: '#file'
    files: [upload.txt]
  - assert_text: 'upload.txt:13'
    target: '#out'
"""
    )
    script = tmp_path / "exported.py"
    done = _bastion("test", "export", str(tmp_path / "main.yaml"), "--out", str(script))
    assert done.returncode == 0, done.stderr
    ran = subprocess.run(
        [sys.executable, str(script), lab.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # The same script fails when the page does not match.
    broken = script.read_text().replace("Hello, Ada (g) agreed", "Hello, Bob")
    script.write_text(broken)
    ran = subprocess.run(
        [sys.executable, str(script), lab.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode != 0
