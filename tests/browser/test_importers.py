"""Selenium IDE and Ghost Inspector imports: mapping, reporting what cannot map, running them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.browser.importers import ImportFormatError, import_data, import_file
from bastion.browser.importers.side import ALIASES
from bastion.browser.runner.session import RunOptions
from bastion.browser.spec import ModuleNotFound
from tests.browser.conftest import SAMPLES, Browser, explain

# Selenium IDE 4's Commands.ts plus the IDE 3 names that still appear in real files.
SIDE_COMMANDS = (
    """acceptAlert acceptConfirmation addSelection answerPrompt assert assertAlert assertChecked
assertConfirmation assertEditable assertElementPresent assertElementNotPresent assertNotChecked
assertNotEditable assertNotSelectedValue assertNotText assertPrompt assertSelectedValue
assertSelectedLabel assertText assertTitle assertValue dismissConfirmation dismissPrompt check click
clickAt close debugger doubleClick doubleClickAt dragAndDropToObject echo editContent executeScript
executeAsyncScript mouseDown mouseDownAt mouseMoveAt mouseOut mouseOver mouseUp mouseUpAt open pause
removeSelection run runScript select selectFrame selectWindow sendKeys setSpeed setWindowSize store
storeAttribute storeElementCount storeJson storeText storeTitle storeValue storeWindowHandle type
uncheck verify verifyChecked verifyEditable verifyElementPresent verifyElementNotPresent
verifyNotChecked verifyNotEditable verifyNotSelectedValue verifyNotText verifySelectedLabel
verifySelectedValue verifyText verifyTitle verifyValue waitForElementEditable
waitForElementNotEditable waitForElementNotPresent waitForElementNotVisible waitForElementPresent
waitForElementVisible waitForText""".split()
    + list(ALIASES)
)
CONTROL_FLOW = "if elseIf else end while do repeatIf times forEach".split()


def _side(tests: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "p",
        "version": "2.0",
        "name": "p",
        "url": "http://127.0.0.1",
        "urls": [],
        "tests": tests,
        "suites": [],
    }


def _command(name: str) -> dict[str, Any]:
    targets = {
        "selectFrame": "index=0",
        "selectWindow": "handle=${win}",
        "storeAttribute": "id=a@href",
        "run": "other",
        "setWindowSize": "800x600",
        "pause": "10",
        "times": "2",
        "assert": "a",
        "verify": "a",
        "storeWindowHandle": "win",
    }
    values = {"dragAndDropToObject": "id=b", "sendKeys": "${KEY_ENTER}", "select": "label=A"}
    return {
        "id": name,
        "command": name,
        "target": targets.get(name, "id=a"),
        "value": values.get(name, "v"),
        "targets": [],
    }


def test_every_selenium_command_is_mapped_or_reported() -> None:
    commands = sorted(set(SIDE_COMMANDS))
    tests = [{"id": n, "name": n, "commands": [_command(n)]} for n in commands]
    tests.append(
        {
            "id": "other",
            "name": "other",
            "commands": [{"command": "echo", "target": "x", "value": ""}],
        }
    )
    result = import_data(_side(tests))
    by_name = {t.name: t for t in result.tests}
    reported = {u.test: u for u in result.unmapped}
    for name in commands:
        mapped = len(by_name[name].steps) == 1 if name in by_name else False
        assert mapped != (name in reported), name
        if name in reported:
            assert reported[name].position == 1 and reported[name].command == name
    # What has no equivalent is a short, known list.
    assert sorted(reported) == [
        "mouseDown",
        "mouseDownAt",
        "mouseMoveAt",
        "mouseUp",
        "mouseUpAt",
        "removeSelection",
    ]


def test_control_flow_nests_and_reports_stray_blocks() -> None:
    commands = [
        {"command": "if", "target": "${a} == 1", "value": ""},
        {"command": "echo", "target": "one", "value": ""},
        {"command": "elseIf", "target": "${a} == 2", "value": ""},
        {"command": "echo", "target": "two", "value": ""},
        {"command": "else", "target": "", "value": ""},
        {"command": "times", "target": "2", "value": ""},
        {"command": "echo", "target": "other", "value": ""},
        {"command": "end", "target": "", "value": ""},
        {"command": "end", "target": "", "value": ""},
        {"command": "end", "target": "", "value": ""},
        {"command": "else", "target": "", "value": ""},
        {"command": "repeatIf", "target": "true", "value": ""},
        {"command": "while", "target": "true", "value": ""},
    ]
    result = import_data(_side([{"id": "t", "name": "t", "commands": commands}]))
    (test,) = result.tests
    top = test.steps[0]
    assert (top.action, top.script) == ("if", "{{a|json}} == 1")
    assert top.steps[0].value == "one"
    nested = top.else_steps[0]
    assert (nested.action, nested.script, nested.steps[0].value) == ("if", "{{a|json}} == 2", "two")
    assert nested.else_steps[0].action == "repeat" and nested.else_steps[0].times == 2
    assert [(u.position, u.command, u.reason) for u in result.unmapped] == [
        (10, "end", "without an open block"),
        (11, "else", "outside an if block"),
        (12, "repeatIf", "without a matching do"),
        (13, "while", "block is never closed with end"),
    ]


def test_side_sample_maps_locators_aliases_and_dialog_order() -> None:
    result = import_file(SAMPLES / "lab.side")
    assert result.source_format == "selenium-ide"
    assert [t.name for t in result.tests] == [
        "Greet",
        "Dialogs and frames",
        "Legacy and unsupported",
    ]
    assert [str(u) for u in result.unmapped] == [
        "Legacy and unsupported #3: mouseDownAt (no equivalent step)",
        "Legacy and unsupported #4: removeSelection (no equivalent step)",
        "Legacy and unsupported #5: submit (no equivalent step)",
        "Legacy and unsupported #7: end (without an open block)",
    ]
    greet, dialogs, _ = result.tests
    assert (greet.steps[0].action, greet.steps[0].value) == ("goto", "/form")
    healed = greet.steps[6]
    assert [str(s) for s in healed.target] == [
        'css=[id="greet-button-old"]',
        "css=#go",
        "xpath=//button[contains(.,'Greet')]",
    ]
    assert greet.steps[-1].module == "dialogs-and-frames"
    actions = [s.action for s in dialogs.steps]
    # webdriverChooseCancelOnVisibleConfirmation came after its click: it now comes before.
    assert actions[5:8] == ["dismiss_dialog", "click", "assert_text"]
    assert actions[1:3] == ["accept_dialog", "click"]


def test_ghost_sample_maps_fallbacks_conditions_and_modules() -> None:
    result = import_file(SAMPLES / "ghost-suite.json")
    assert result.source_format == "ghost-inspector"
    assert [str(u) for u in result.unmapped] == [
        "Sign in and greet #9: assertAccessibility (no equivalent step)"
    ]
    assert any("private value" in w for w in result.warnings)
    main, module = result.tests
    assert main.timeout_ms == 5000 and module.import_only
    assert [str(s) for s in main.steps[2].target] == [
        "css=#login-button-gone",
        "xpath=//button[@type='submit']",
    ]
    assert main.steps[6].module == "greet-module"
    assert module.steps[11].when == "return {{title|json}} === 'Form'"
    assert module.steps[12].value == "Enter"
    assert result.modules()("greet-module") is module
    with pytest.raises(ModuleNotFound):
        result.modules()("elsewhere")


def test_unknown_files_are_refused(tmp_path: Any) -> None:
    with pytest.raises(ImportFormatError):
        import_data({"hello": "world"})
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(ImportFormatError):
        import_file(bad)


def test_imported_tests_run_green_against_the_lab(browser: Browser) -> None:
    for sample, variables in (("lab.side", {"who": "Ada"}), ("ghost-suite.json", {"user": "ada"})):
        result = import_file(SAMPLES / sample)
        for test in result.tests:
            if test.import_only:
                continue
            run = browser.loop.run(
                browser.session.run(
                    test,
                    RunOptions(
                        base_url=browser.lab.url,
                        record_video=False,
                        final_screenshot=False,
                        modules=result.modules(),
                        environment_variables=variables,
                        secrets={"password": "s3cret-pass"},
                        artifacts_dir=browser.tmp / f"imported-{test.name}",
                    ),
                )
            )
            assert run.status == "passed", f"{sample} {test.name}\n{explain(run)}"
            assert "s3cret-pass" not in json.dumps(run.to_dict())
