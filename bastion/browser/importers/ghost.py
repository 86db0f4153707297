"""Ghost Inspector test and suite JSON exports.

A step is ``{command, target, value, variableName, condition, optional, private, notes}``;
``target`` is a selector or an ordered fallback list ``[{"selector": ...}]``. Variables already
use our ``{{name}}`` syntax. ``execute`` (import steps from another test) becomes a module import
of ``<test id>``: export that test too and keep both files side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.browser.importers.common import Collector, ImportResult, slug
from bastion.browser.spec.model import MAX_TIMEOUT_MS, BrowserTest
from bastion.browser.spec.parse import SpecError, load_test

# keypress codes -> Playwright key names
KEY_CODES = {
    "8": "Backspace",
    "9": "Tab",
    "13": "Enter",
    "27": "Escape",
    "32": "Space",
    "33": "PageUp",
    "34": "PageDown",
    "35": "End",
    "36": "Home",
    "37": "ArrowLeft",
    "38": "ArrowUp",
    "39": "ArrowRight",
    "40": "ArrowDown",
    "46": "Delete",
}
_ELEMENT_ASSERTS = {
    "assertElementPresent": "present",
    "assertElementNotPresent": "absent",
    "assertElementVisible": "visible",
    "assertElementNotVisible": "hidden",
}
_TEXT_ASSERTS = {
    "assertText": "equals",
    "assertNotText": "not_equals",
    "assertTextPresent": "contains",
    "assertTextNotPresent": "not_contains",
}


def looks_like_ghost(data: Any) -> bool:
    if isinstance(data, list):
        return bool(data) and all(isinstance(t, Mapping) and "steps" in t for t in data)
    if not isinstance(data, Mapping):
        return False
    if "steps" in data:
        return True
    inner = data.get("data")
    if isinstance(inner, Mapping | list):
        return looks_like_ghost(inner)
    tests = data.get("tests")
    return isinstance(tests, list) and looks_like_ghost(tests)


def _tests_of(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, list):
        return [t for t in data if isinstance(t, Mapping)]
    if "steps" in data:
        return [data]
    if "data" in data:
        return _tests_of(data["data"])
    return _tests_of(data["tests"])


def _selectors(target: Any) -> list[str]:
    items = target if isinstance(target, list) else [target]
    found: list[str] = []
    for item in items:
        raw = item.get("selector") if isinstance(item, Mapping) else item
        if isinstance(raw, str) and raw.strip() and raw.strip() not in found:
            found.append(raw.strip())
    return found


def _key(value: str) -> str:
    if value in KEY_CODES:
        return KEY_CODES[value]
    if value.isdigit() and 32 < int(value) < 127:
        return chr(int(value))
    return value


def _step(
    raw: Mapping[str, Any], test: str, position: int, out: Collector, ids: Mapping[str, str]
) -> dict[str, Any] | None:
    command = str(raw.get("command", ""))
    targets = _selectors(raw.get("target"))
    target: str | list[str] = targets if len(targets) > 1 else (targets[0] if targets else "")
    value = "" if raw.get("value") is None else str(raw.get("value"))
    variable = str(raw.get("variableName") or "")

    def element(action: str, **fields: Any) -> dict[str, Any] | None:
        if not targets:
            out.miss(test, position, command, "has no target selector")
            return None
        return {"action": action, "target": target, **fields}

    step: dict[str, Any] | None
    if command == "open":
        step = {"action": "goto", "value": value}
    elif command == "click":
        step = element("click")
    elif command == "assign":
        step = element("type", value=value)
    elif command == "keypress":
        step = {"action": "press", "value": _key(value)}
        if targets:
            step["target"] = target
    elif command == "mouseOver":
        step = element("hover")
    elif command == "dragAndDrop":
        step = element("drag", to=value)
    elif command == "screenshot":
        step = {"action": "screenshot", "value": str(raw.get("notes") or f"step {position}")[:80]}
        if targets:
            step["target"] = target
    elif command == "eval":
        step = {"action": "execute_js", "script": value}
    elif command == "extract":
        step = element("store", source="text", variable=variable)
    elif command == "extractEval":
        step = {"action": "store", "source": "js", "script": value, "variable": variable}
    elif command == "store":
        step = {"action": "store", "source": "literal", "value": value, "variable": variable}
    elif command == "execute":
        step = {"action": "module", "module": ids.get(value, value)}
        if value not in ids:
            out.warnings.append(
                f"{test} #{position}: imports test {value!r}, not in this export: "
                f"export it too and save it as {value}.yaml"
            )
    elif command == "pause":
        step = {"action": "wait", "ms": max(1, min(int(value or "0"), 120_000))}
    elif command == "goBack":
        step = {"action": "go_back"}
    elif command == "refresh":
        step = {"action": "refresh"}
    elif command == "exit":
        step = {"action": "exit", "value": "failing" if value == "failing" else "passing"}
    elif command in _ELEMENT_ASSERTS:
        step = element("assert_element", state=_ELEMENT_ASSERTS[command])
    elif command in _TEXT_ASSERTS:
        step = {"action": "assert_text", "value": value, "match": _TEXT_ASSERTS[command]}
        if targets:
            step["target"] = target
    elif command == "assertEval":
        step = {"action": "assert_js", "script": value}
    else:
        out.miss(test, position, command or "?", "no equivalent step")
        return None
    if step is None:
        return None
    condition = raw.get("condition")
    if isinstance(condition, Mapping) and condition.get("statement"):
        step["when"] = str(condition["statement"])
    if raw.get("optional"):
        step["optional"] = True
    if raw.get("notes") and command != "screenshot":
        step["name"] = str(raw["notes"])[:120]
    if raw.get("private"):
        out.warnings.append(f"{test} #{position}: private value: move it into a secret variable")
    return out.checked(step, test, position, command)


def import_ghost(data: Any) -> ImportResult:
    out = Collector()
    built: list[BrowserTest] = []
    tests = _tests_of(data)
    # execute steps name tests by id; our modules name them by file (the slug of their name).
    ids = {str(t["_id"]): slug(str(t.get("name") or "")) for t in tests if t.get("_id")}
    for number, test in enumerate(tests, start=1):
        name = str(test.get("name") or f"test {number}")
        steps = []
        raw_steps = sorted(
            (s for s in test.get("steps", []) if isinstance(s, Mapping)),
            key=lambda s: s.get("sequence", 0) if isinstance(s.get("sequence"), int) else 0,
        )
        for position, raw in enumerate(raw_steps, start=1):
            step = _step(raw, name, position, out, ids)
            if step is not None:
                steps.append(step)
        document: dict[str, Any] = {
            "name": name,
            "start_url": str(test.get("startUrl") or ""),
            "steps": steps,
        }
        viewport = test.get("viewportSize")
        if isinstance(viewport, Mapping):
            document["viewport"] = {
                "width": viewport.get("width"),
                "height": viewport.get("height"),
            }
        wait = test.get("maxWaitDelay")
        if isinstance(wait, int) and 0 < wait <= MAX_TIMEOUT_MS:
            document["timeout_ms"] = wait
        if test.get("importOnly"):
            document["import_only"] = True
        try:
            built.append(load_test(document))
        except SpecError as exc:
            for problem in exc.problems:
                out.miss(name, 0, problem.where, f"{problem.field}: {problem.message}")
    return ImportResult("ghost-inspector", tuple(built), tuple(out.unmapped), tuple(out.warnings))
