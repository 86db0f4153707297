"""The test format: parsing, validation messages, selectors, variables and modules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bastion.browser.importers.playwright_script import export_playwright
from bastion.browser.spec import (
    ACTIONS,
    DirectoryModules,
    SpecError,
    Step,
    UnknownVariable,
    Variables,
    check_modules,
    dump_test,
    load_test,
    load_test_file,
    parse_selector,
)
from bastion.browser.spec.modules import affected_by, users_of
from bastion.browser.spec.selectors import SelectorError


def test_shorthand_and_explicit_steps_parse_to_the_same_thing() -> None:
    short = load_test({"name": "t", "steps": [{"click": "#go"}, {"type": "#name", "value": "Ada"}]})
    long = load_test(
        {
            "name": "t",
            "steps": [
                {"action": "click", "target": "#go"},
                {"action": "type", "target": "css=#name", "value": "Ada"},
            ],
        }
    )
    assert short == long
    assert short.steps[0].target[0].kind == "css"


def test_every_action_round_trips_through_yaml() -> None:
    steps = [
        {"goto": "/form"},
        {"click": ["#a", "xpath=//button", 'text="Go"', 'role=button[name="Go"]'], "name": "go"},
        {"double_click": "#a"},
        {"type": "#a", "value": "{{name}}"},
        {"clear": "#a"},
        {"select": "#c", "value": "label=Green"},
        {"check": "#x"},
        {"uncheck": "#x"},
        {"hover": "#h"},
        {"press": "Enter", "target": "#k"},
        {"upload": "#f", "files": ["a.txt"]},
        {"drag": "#s", "to": "#z"},
        {"scroll": "#b"},
        {"action": "scroll", "y": 400},
        {"wait_for_element": "#late", "state": "hidden"},
        {"wait_for_text": "done"},
        {"wait_for_url": "/next"},
        {"wait": 100},
        {"assert_element": "#x", "state": "absent"},
        {"assert_text": "^Hi", "match": "regex", "target": "#o"},
        {"assert_value": "#a", "value": "Ada"},
        {"assert_url": "/next", "match": "contains"},
        {"assert_title": "Form"},
        {"assert_js": "return 1 === 1"},
        {"assert_variable": "x", "value": "1"},
        {"assert_dialog": "sure?", "match": "contains"},
        {"store": "x", "target": "#o"},
        {"store": "y", "source": "js", "script": "1 + 1"},
        {"execute_js": "window.x = 1", "variable": "r"},
        {"screenshot": "home", "exclude": ["#clock", ".ad"]},
        {"switch_frame": "#inner"},
        {"action": "switch_frame", "value": "top"},
        {"switch_tab": "last"},
        {"close_tab": None},
        {"go_back": None},
        {"go_forward": None},
        {"refresh": None},
        {"accept_dialog": "text"},
        {"dismiss_dialog": None},
        {"set_viewport": "800x600"},
        {"log": "hello"},
        {"wait_for_email": "{{run.email}}", "timeout_ms": 5000},
        {"assert_email": "Welcome", "attribute": "subject", "match": "contains"},
        {"store_email": "link", "attribute": "link", "value": "confirm"},
        {"if": "true", "steps": [{"log": "a"}], "else_steps": [{"log": "b"}]},
        {"while": "false", "steps": [{"log": "c"}], "max_iterations": 3},
        {"repeat": 2, "steps": [{"log": "d"}]},
        {"for_each": "[1, 2]", "variable": "item", "steps": [{"log": "{{item}}"}]},
        {"module": "login", "params": {"user": "ada"}},
        {"exit": "passing", "when": "document.title == 'x'", "optional": True},
    ]
    test = load_test({"name": "all", "start_url": "/", "viewport": "800x600", "steps": steps})
    assert {s.action for s in test.steps} == set(ACTIONS)
    again = load_test(__import__("yaml").safe_load(dump_test(test)))
    assert again == test
    # Every action also exports to a Playwright script that compiles.
    login = load_test({"name": "login", "steps": [{"goto": "/login"}]})
    script = export_playwright(test, "http://127.0.0.1:1", lambda name: login)
    compile(script, "exported.py", "exec")
    assert "page.set_viewport_size({'width': 800, 'height': 600})" in script


def test_validation_names_step_index_name_and_field() -> None:
    with pytest.raises(SpecError) as caught:
        load_test(
            {
                "name": "bad",
                "steps": [
                    {"goto": "/"},
                    {"action": "click", "name": "Sign in"},
                    {"type": "#a", "value": "x", "colour": "red"},
                    {"action": "teleport"},
                    {"assert_text": "(", "match": "regex"},
                    {"wait": 500_000},
                    {"if": "true", "steps": [{"click": "role=buton"}]},
                    {"store": "1bad", "target": "#a"},
                ],
            }
        )
    text = str(caught.value)
    assert 'step 2 "Sign in" (click): field "target": required' in text
    assert 'step 3 (type): field "colour": not used by type' in text
    assert "step 4: field \"action\": unknown action 'teleport'" in text
    assert 'step 5 (assert_text): field "value": invalid regular expression' in text
    assert 'step 6 (wait): field "ms": must be an integer' in text
    assert "step 7.1 (click): field \"target\": invalid selector 'role=buton'" in text
    assert "step 8 (store): field \"variable\": invalid variable name '1bad'" in text
    assert len(caught.value.problems) == 7


def test_test_level_fields_are_validated() -> None:
    with pytest.raises(SpecError) as caught:
        load_test({"name": "", "steps": {}, "viewport": "huge", "timeout_ms": 0, "extra": 1})
    fields = {p.field for p in caught.value.problems}
    assert fields == {"name", "steps", "viewport", "timeout_ms", "extra"}


def test_selector_strings() -> None:
    assert parse_selector("#a").kind == "css"
    assert parse_selector("//div[@id='a']").kind == "xpath"
    assert parse_selector("xpath=//a").value == "//a"
    text = parse_selector('text="Sign in"')
    assert (text.kind, text.value, text.exact) == ("text", "Sign in", True)
    role = parse_selector('role=button[name="Save"]')
    assert (role.kind, role.value, role.name, role.exact) == ("role", "button", "Save", True)
    assert str(role) == 'role=button[name="Save"]'
    for bad in ("", "css=", "role=notarole", "role=button[oops]"):
        with pytest.raises(SelectorError):
            parse_selector(bad)


def test_variables_layers_builtins_and_masking() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    variables = Variables(
        test={"who": "test"},
        suite={"who": "suite", "team": "blue"},
        environment={"team": "env", "region": "eu"},
        secrets={"password": "hunter2-secret"},
        mail_domain="inbox.example.test",
        run_id="abc123",
        now=now,
    )
    assert variables.render("{{who}} {{team}} {{region}}") == "test blue eu"
    assert variables.render("{{run.email}}") == "run-abc123@inbox.example.test"
    assert variables.render("{{email.Sign Up}}") == "{{email.Sign Up}}"  # not a variable name
    assert variables.render("{{email.signup}}") == "signup-abc123@inbox.example.test"
    assert variables.render("{{timestamp}}") == str(int(now.timestamp()))
    assert variables.render("{{date}}") == "2026-11-26"
    first, second = variables.render("{{random.string}}"), variables.render("{{random.string}}")
    assert len(first) == 10 and first != second
    assert variables.render("{{who|json}}") == '"test"'
    with pytest.raises(UnknownVariable) as missing:
        variables.render("{{nope}}")
    assert str(missing.value) == "unknown variable {{nope}}"
    assert variables.render("pw={{password}}") == "pw=hunter2-secret"
    assert variables.mask("typed hunter2-secret here") == "typed **** here"
    variables.set("who", "runtime")
    assert variables.get("who") == "runtime"
    used = variables.used()
    assert used["password"] == "****"
    assert "hunter2" not in json.dumps(used)


def test_each_run_gets_its_own_email() -> None:
    one, two = Variables(mail_domain="d.test"), Variables(mail_domain="d.test")
    assert one.get("run.email") != two.get("run.email")
    assert one.get("run.email") == one.get("run.email")


def test_modules_resolve_from_a_folder_and_cycles_are_refused(tmp_path: Path) -> None:
    (tmp_path / "login.yaml").write_text(
        "name: login\nimport_only: true\nvariables: {user: ada}\nsteps:\n  - log: '{{user}}'\n"
    )
    (tmp_path / "a.yaml").write_text("name: a\nsteps:\n  - module: b\n")
    (tmp_path / "b.yaml").write_text("name: b\nsteps:\n  - module: a.yaml\n")
    modules = DirectoryModules(tmp_path)
    main = load_test({"name": "main", "steps": [{"module": "login", "params": {"user": "bob"}}]})
    check_modules(main, modules)
    with pytest.raises(SpecError, match=r"import cycle: a > b > a\.yaml"):
        check_modules(load_test_file(tmp_path / "a.yaml"), modules)
    with pytest.raises(SpecError, match="module 'missing' not found"):
        check_modules(load_test({"name": "m", "steps": [{"module": "missing"}]}), modules)
    with pytest.raises(SpecError, match="outside"):
        check_modules(load_test({"name": "m", "steps": [{"module": "../etc/passwd"}]}), modules)
    assert users_of("login", {"main": main, "other": load_test({"name": "o"})}) == ["main"]
    wrapper = load_test({"name": "wrapper", "steps": [{"module": "main"}]})
    tests = {"main": main, "wrapper": wrapper, "other": load_test({"name": "o"})}
    assert affected_by("login", tests) == ["main", "wrapper"]


def test_steps_are_frozen_values() -> None:
    step = Step(action="click")
    with pytest.raises(AttributeError):
        step.action = "hover"  # type: ignore[misc]
