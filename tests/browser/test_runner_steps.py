"""Every step kind, run in real Chromium against the lab site."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from bastion.browser.runner import RunResult, to_junit
from bastion.browser.spec import DirectoryModules
from tests.browser.conftest import SAMPLES, Browser, explain, statuses


def assert_passed(result: RunResult) -> None:
    assert result.status == "passed", explain(result)
    assert all(s.status == "passed" for s in result.steps), explain(result)


def test_form_interactions_assertions_and_history(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "form",
            "start_url": "/form",
            "steps": [
                {"type": "#name", "value": "Ada"},
                {"assert_value": "#name", "value": "Ada"},
                {"select": "#color", "value": "label=Green"},
                {"assert_value": "#color", "value": "g"},
                {"check": "#agree"},
                {"assert_element": "#agree", "state": "checked"},
                {"click": 'role=button[name="Greet"]'},
                {"assert_text": "Hello, Ada (g) agreed", "target": "#out"},
                {"assert_text": "Ada", "target": "#out", "match": "contains"},
                {"assert_text": "^Hello, \\w+", "target": "#out", "match": "regex"},
                {"assert_text": "Bob", "target": "#out", "match": "not_contains"},
                {"uncheck": "#agree"},
                {"assert_element": "#agree", "state": "unchecked"},
                {"clear": "#name"},
                {"assert_value": "#name", "value": ""},
                {"double_click": "#twice"},
                {"assert_text": "double", "target": "#out"},
                {"hover": "#hover-me"},
                {"assert_element": "#tip", "state": "visible"},
                {"type": "#keys", "value": "abc"},
                {"press": "Enter", "target": "#keys"},
                {"assert_text": "entered abc", "target": "#out"},
                {"assert_element": "#locked", "state": "readonly"},
                {"assert_element": "#name", "state": "editable"},
                {"assert_element": "#go", "state": "enabled"},
                {"assert_element": "#nothing-here", "state": "absent"},
                {"assert_element": "#tip", "state": "present"},
                {"wait_for_element": "#appeared", "state": "visible"},
                {"wait_for_text": "appeared"},
                {"assert_title": "Form"},
                {"click": "text=Next page"},
                {"wait_for_url": "/form/next"},
                {"assert_url": "/form/next?x=1"},
                {"assert_url": "x=\\d", "match": "regex"},
                {"assert_text": "You made it", "target": "xpath=//p[@id='msg']"},
                {"go_back": None},
                {"assert_title": "Form"},
                {"go_forward": None},
                {"assert_title": "Next"},
                {"refresh": None},
                {"assert_title": "Next"},
                {"goto": "/form"},
                {"press": "Tab"},
                {"set_viewport": "800x600"},
                {"assert_js": "return window.innerWidth === 800"},
            ],
        }
    )
    assert_passed(result)
    assert result.steps[0].index == "0" and result.steps[0].note == "HTTP 200"
    assert result.final_url == f"{browser.lab.url}/form"


def test_fallback_selectors_are_tried_in_order(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "fallbacks",
            "start_url": "/form",
            "timeout_ms": 1500,
            "steps": [
                {"click": ["#does-not-exist", "xpath=//nope", 'role=button[name="Greet"]', "#go"]},
                {"type": ["xpath=//[broken", "#name"], "value": "Ada"},
                {"click": ["#missing-1", "#missing-2"], "optional": True},
                {"assert_value": "#name", "value": "Ada"},
            ],
        }
    )
    steps = result.steps
    assert steps[1].status == "passed" and steps[1].selector_used == 'role=button[name="Greet"]'
    assert steps[2].status == "passed" and steps[2].selector_used == "css=#name"
    assert steps[3].status == "failed" and steps[3].optional
    assert "no element matches css=#missing-1, css=#missing-2 within 1500 ms" in steps[3].error
    assert steps[3].screenshot and (browser.tmp).exists()
    assert result.status == "passed", explain(result)


def test_variables_store_and_scripts(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "vars",
            "start_url": "/form",
            "variables": {"who": "Ada"},
            "steps": [
                {"type": "#name", "value": "{{who}}-{{run.id}}"},
                {"store": "typed", "source": "value", "target": "#name"},
                {"assert_variable": "typed", "value": "Ada-", "match": "contains"},
                {"store": "title", "source": "title"},
                {"store": "where", "source": "url"},
                {"store": "href", "source": "attribute", "target": "#next", "attribute": "href"},
                {"store": "options", "source": "count", "target": "#color option"},
                {"store": "sum", "source": "js", "script": "return 20 + 22"},
                {"store": "literal", "value": "{{title}}!"},
                {"assert_variable": "title", "value": "Form"},
                {"assert_variable": "href", "value": "/form/next?x=1"},
                {"assert_variable": "options", "value": "3"},
                {"assert_variable": "sum", "value": "42"},
                {"assert_variable": "literal", "value": "Form!"},
                {
                    "execute_js": "document.getElementById('out').textContent = {{who|json}}; return [1, 2]",
                    "variable": "arr",
                },
                {"assert_variable": "arr", "value": "[1, 2]"},
                {"assert_text": "Ada", "target": "#out"},
                {"type": "#name", "value": "{{email.signup}}"},
                {
                    "assert_js": "return document.getElementById('name').value.endsWith('@inbox.bastion.test')"
                },
                {"type": "#keys", "value": "{{password}}"},
                {"assert_value": "#keys", "value": "wrong-{{password}}", "timeout_ms": 300},
            ],
        },
        secrets={"password": "s3cret-pass"},
        environment_variables={"who": "not used: the test's own value wins"},
    )
    assert result.status == "failed"
    last = result.steps[-1]
    assert last.action == "assert_value" and last.status == "failed"
    assert "s3cret-pass" not in json.dumps(result.to_dict())
    assert "wrong-****" in last.error
    assert result.variables["password"] == "****"
    assert result.variables["who"] == "Ada"
    assert result.variables["email.signup"].endswith("@inbox.bastion.test")


def test_unknown_variable_fails_the_step_with_its_name(browser: Browser) -> None:
    result = browser.run({"name": "unknown", "steps": [{"log": "{{nobody}}"}]})
    assert result.steps[0].error == "unknown variable {{nobody}}"


def test_control_flow_conditions_optional_soft_and_disabled(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "flow",
            "start_url": "/list",
            "steps": [
                {
                    "if": "return document.title === 'List'",
                    "steps": [{"store": "branch", "value": "then"}],
                    "else_steps": [{"store": "branch", "value": "else"}],
                },
                {
                    "if": "false",
                    "steps": [{"log": "no"}],
                    "else_steps": [{"store": "else_ran", "value": "yes"}],
                },
                {"store": "n", "value": "0"},
                {
                    "while": "return Number(document.body.dataset.n || 0) < 3",
                    "steps": [
                        {
                            "execute_js": "document.body.dataset.n = Number(document.body.dataset.n || 0) + 1"
                        }
                    ],
                },
                {"assert_js": "return document.body.dataset.n === '3'"},
                {"repeat": 2, "steps": [{"execute_js": "window.count = (window.count || 0) + 1"}]},
                {"assert_js": "return window.count === 2"},
                {
                    "for_each": "return Array.from(document.querySelectorAll('.item')).map(e => e.textContent)",
                    "variable": "item",
                    "steps": [
                        {
                            "execute_js": "document.getElementById('picked').textContent += {{item|json}} + ','"
                        }
                    ],
                },
                {"assert_text": "alpha,beta,gamma,", "target": "#picked"},
                {
                    "while": "true",
                    "at_least_once": True,
                    "max_iterations": 2,
                    "steps": [{"log": "spin"}],
                    "optional": True,
                },
                {"log": "skipped by condition", "when": "return false"},
                {"log": "runs by condition", "when": "return true"},
                {"assert_title": "Wrong title", "soft": True, "timeout_ms": 300},
                {"log": "disabled", "disabled": True},
                {"assert_variable": "branch", "value": "then"},
                {"assert_variable": "else_ran", "value": "yes"},
            ],
        }
    )
    by_index = {s.index: s for s in result.steps}
    assert by_index["1"].note == "condition true" and by_index["1.1"].status == "passed"
    assert by_index["2.else.1"].status == "passed"
    assert by_index["4"].note == "3 iterations"
    assert by_index["6.2.1"].status == "passed"
    assert by_index["8"].note == "3 iterations"
    assert by_index["10"].status == "failed" and by_index["10"].optional
    assert "max_iterations=2" in by_index["10"].error
    assert by_index["11"].status == "skipped" and by_index["11"].condition is False
    assert by_index["12"].status == "passed" and by_index["12"].condition is True
    assert by_index["13"].status == "failed" and by_index["13"].soft
    assert by_index["14"].status == "skipped" and by_index["14"].note == "disabled"
    assert by_index["15"].status == "passed" and by_index["16"].status == "passed"
    # The soft failure fails the run but the steps after it ran.
    assert result.status == "failed"
    assert result.error.startswith("expected title to equal 'Wrong title'")


def test_exit_step_ends_the_test_with_its_verdict(browser: Browser) -> None:
    passing = browser.run({"name": "exit", "steps": [{"exit": "passing"}, {"log": "never"}]})
    assert passing.status == "passed"
    assert statuses(passing) == [("1", "exit", "passed"), ("2", "log", "skipped")]
    assert passing.steps[1].note == "not run: the test exited"
    failing = browser.run({"name": "exit", "steps": [{"exit": "failing"}]})
    assert failing.status == "failed"


def test_login_with_secret_frames_tabs_dialogs(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "tour",
            "start_url": "/login",
            "steps": [
                {"type": 'role=textbox[name="Username"]', "value": "ada"},
                {"type": "#password", "value": "{{password}}"},
                {"click": 'role=button[name="Sign in"]'},
                {"assert_text": "Welcome, ada", "target": "#welcome"},
                {"goto": "/frames"},
                {"switch_frame": "#inner"},
                {"click": "#inner-btn"},
                {"assert_text": "inner clicked", "target": "#where"},
                {"switch_frame": "#deep"},
                {"assert_text": "deep frame", "target": "#where"},
                {"action": "switch_frame", "value": "parent"},
                {"assert_text": "inner clicked", "target": "#where"},
                {"action": "switch_frame", "value": "top"},
                {"assert_text": "outer page", "target": "#where"},
                {"action": "switch_frame", "value": "0"},
                {"assert_text": "inner clicked", "target": "#where"},
                {"action": "switch_frame", "value": "top"},
                {"goto": "/tabs"},
                {"click": "#newtab", "opens_tab": True},
                {"switch_tab": "last"},
                {"assert_text": "The new tab", "target": "#tab-title"},
                {"close_tab": None},
                {"assert_url": "/tabs"},
                {"click": "#popup", "opens_tab": True},
                {"switch_tab": "popup=1"},
                {"switch_tab": "first"},
                {"goto": "/dialogs"},
                {"click": "#confirm"},
                {"assert_text": "cancelled", "target": "#result"},
                {"assert_dialog": "Are you sure?"},
                {"accept_dialog": "Grace"},
                {"click": "#prompt"},
                {"assert_text": "name=Grace", "target": "#result"},
                {"click": "#confirm"},
                {"assert_text": "confirmed", "target": "#result"},
                {"dismiss_dialog": None},
                {"click": "#alert"},
                {"assert_text": "alerted", "target": "#result"},
            ],
        },
        secrets={"password": "s3cret-pass"},
    )
    assert_passed(result)
    confirm = next(s for s in result.steps if s.index == "28")
    assert confirm.dialogs == ("confirm: Are you sure?",)


def test_upload_drag_scroll_screenshots_and_video(browser: Browser, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    result = browser.run(
        {
            "name": "media",
            "start_url": "/upload",
            "steps": [
                {"upload": "#file", "files": ["upload.txt"]},
                {"assert_text": "upload.txt:13", "target": "#out"},
                {"goto": "/dnd"},
                {"drag": "#source", "to": "#zone"},
                {"assert_text": "dropped card", "target": "#zone"},
                {"screenshot": "after drop"},
                {"screenshot": "zone only", "target": "#zone"},
                {"goto": "/tall"},
                {"action": "scroll", "y": 500},
                {"assert_title": "scrolled 500"},
                {"scroll": "#bottom"},
                {"assert_title": "scrolled", "match": "contains"},
                {"wait": 50, "screenshot": True},
            ],
        },
        files_root=SAMPLES,
        artifacts_dir=artifacts,
        record_video=True,
        final_screenshot=True,
    )
    assert_passed(result)
    names = [shot.name for shot in result.screenshots]
    assert names == ["after drop", "zone only"]
    for shot in result.screenshots:
        assert (artifacts / shot.path).read_bytes().startswith(b"\x89PNG")
    assert result.steps[-1].screenshot
    assert (artifacts / result.final_screenshot).is_file()
    assert result.video == "video.webm"
    assert (artifacts / "video.webm").read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML (webm)


def test_console_errors_and_failed_requests_are_reported(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "errors",
            "start_url": "/errors",
            "steps": [{"wait": 300}, {"assert_text": "page with errors"}],
        }
    )
    assert result.status == "passed"
    console = [e for s in result.steps for e in s.console_errors]
    requests = [r for s in result.steps for r in s.failed_requests]
    assert "lab console error" in console
    assert any("lab uncaught error" in e for e in console)
    assert any(r.startswith("404 GET") and r.endswith("/missing-resource") for r in requests)


def test_modules_with_parameters(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "login.yaml").write_text(
        "name: login\nimport_only: true\nvariables: {user: nobody}\nsteps:\n"
        "  - goto: /login\n"
        "  - type: '#username'\n    value: '{{user}}'\n"
        "  - type: '#password'\n    value: '{{password}}'\n"
        "  - click: 'role=button[name=\"Sign in\"]'\n"
        "  - store: greeted\n    target: '#welcome'\n"
    )
    result = browser.run(
        {
            "name": "uses module",
            "steps": [
                {"module": "login", "params": {"user": "grace"}},
                {"assert_variable": "greeted", "value": "Welcome, grace"},
            ],
        },
        modules=DirectoryModules(tmp_path),
        secrets={"password": "s3cret-pass"},
    )
    assert_passed(result)
    inner = [s for s in result.steps if s.module == "login"]
    assert [s.index for s in inner] == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    missing = browser.run(
        {"name": "m", "steps": [{"module": "nope"}]}, modules=DirectoryModules(tmp_path)
    )
    assert missing.status == "error" and "module 'nope' not found" in missing.error


def test_results_round_trip_as_json_and_junit(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "junit",
            "start_url": "/form",
            "timeout_ms": 500,
            "steps": [{"click": "#go"}, {"click": "#absent"}, {"log": "x"}],
        }
    )
    again = type(result).from_json(result.to_json())
    assert again == result
    root = ElementTree.fromstring(to_junit([result]).split("\n", 1)[1])  # noqa: S314 - our own output
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("skipped") == "1"
    failure = root.find(".//failure")
    assert failure is not None and "no element matches css=#absent" in (
        failure.get("message") or ""
    )
