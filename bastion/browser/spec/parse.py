"""Read and write tests as YAML/JSON, validating every field.

``load_test`` turns a mapping (from YAML or JSON) into a ``BrowserTest`` or raises ``SpecError``
listing every problem with the step it is in (its position and name) and the field at fault.
``dump_test`` is the inverse and leaves out fields that have their default value.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bastion.browser.spec.model import (
    ACTIONS,
    BLOCK_ACTIONS,
    COMMON_FIELDS,
    DEFAULT_TIMEOUT_MS,
    ELEMENT_STATES,
    MATCH_MODES,
    MAX_ITERATIONS,
    MAX_TIMEOUT_MS,
    MAX_WAIT_MS,
    STORE_SOURCES,
    BrowserTest,
    Selector,
    Step,
    Visual,
)
from bastion.browser.spec.selectors import SelectorError, format_selector, parse_selector
from bastion.browser.spec.variables import NAME, TEMPLATE

_SELECTOR_FIELDS = ("target", "to", "exclude")
_INT_FIELDS = {
    "ms": (0, MAX_WAIT_MS),
    "x": (-1_000_000, 1_000_000),
    "y": (-1_000_000, 1_000_000),
    "times": (1, MAX_ITERATIONS),
    "max_iterations": (1, MAX_ITERATIONS),
    "timeout_ms": (1, MAX_TIMEOUT_MS),
}
_BOOL_FIELDS = (
    "optional",
    "soft",
    "disabled",
    "screenshot",
    "opens_tab",
    "allow_download",
    "at_least_once",
)
_STR_FIELDS = ("name", "value", "variable", "attribute", "script", "module", "when")
_STORE_NEEDS = {
    "literal": ("value",),
    "text": ("target",),
    "value": ("target",),
    "attribute": ("target", "attribute"),
    "js": ("script",),
    "count": ("target",),
    "title": (),
    "url": (),
}
_VIEWPORT = re.compile(r"^\s*(\d{2,5})\s*[xX\u00d7]\s*(\d{2,5})\s*$")


@dataclass(frozen=True)
class Problem:
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        field = f'field "{self.field}": ' if self.field else ""
        return f"{self.where}: {field}{self.message}"


class SpecError(ValueError):
    """A test that does not validate; ``problems`` lists every fault found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def parse_viewport(raw: str) -> tuple[int, int] | None:
    found = _VIEWPORT.match(raw)
    return (int(found.group(1)), int(found.group(2))) if found else None


# -- reading ----------------------------------------------------------------------------------
def load_test_file(path: Path) -> BrowserTest:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SpecError([Problem(str(path), "", f"not valid YAML/JSON: {exc}")]) from exc
    return load_test(data, default_name=path.stem)


def load_test(data: object, default_name: str = "") -> BrowserTest:
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise SpecError([Problem("test", "", "must be a mapping with name, start_url and steps")])
    allowed = {
        "name",
        "start_url",
        "steps",
        "variables",
        "description",
        "viewport",
        "timeout_ms",
        "import_only",
        "visual",
    }
    for key in data:
        if key not in allowed:
            problems.append(Problem("test", str(key), "unknown field"))
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("test", "name", "required, a non-empty string"))
        name = default_name or "?"
    start_url = data.get("start_url", "")
    if not isinstance(start_url, str):
        problems.append(Problem("test", "start_url", "must be a string"))
        start_url = ""
    variables = _str_map(data.get("variables", {}), "test", "variables", problems)
    width, height = 1280, 800
    if "viewport" in data:
        raw = data["viewport"]
        size = parse_viewport(raw) if isinstance(raw, str) else None
        if isinstance(raw, Mapping):
            w, h = raw.get("width"), raw.get("height")
            if isinstance(w, int) and isinstance(h, int) and 10 <= w <= 10000 and 10 <= h <= 10000:
                size = (w, h)
        if size is None:
            problems.append(
                Problem("test", "viewport", 'must be "WIDTHxHEIGHT" or {width, height}')
            )
        else:
            width, height = size
    timeout = data.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not 1 <= timeout <= MAX_TIMEOUT_MS
    ):
        problems.append(Problem("test", "timeout_ms", f"must be an integer 1..{MAX_TIMEOUT_MS}"))
        timeout = DEFAULT_TIMEOUT_MS
    import_only = data.get("import_only", False)
    if not isinstance(import_only, bool):
        problems.append(Problem("test", "import_only", "must be true or false"))
        import_only = False
    raw_steps = data.get("steps", [])
    steps: tuple[Step, ...] = ()
    if not isinstance(raw_steps, list):
        problems.append(Problem("test", "steps", "must be a list"))
    else:
        steps = _steps(raw_steps, "", problems)
    description = data.get("description", "")
    visual = _visual(data.get("visual", {}), problems)
    if problems:
        raise SpecError(problems)
    return BrowserTest(
        name=name.strip(),
        start_url=start_url,
        steps=steps,
        variables=variables,
        description=description if isinstance(description, str) else "",
        viewport_width=width,
        viewport_height=height,
        timeout_ms=timeout,
        import_only=import_only,
        visual=visual,
    )


def _number(raw: object, low: float, high: float) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
        return None
    return float(raw)


def _visual(raw: object, problems: list[Problem]) -> Visual:
    """``visual: {tolerance_pct: 0.5, threshold: 0.1, exclude: ["#clock", ...]}``."""
    if not isinstance(raw, Mapping):
        problems.append(Problem("test", "visual", "must be a mapping"))
        return Visual()
    defaults = Visual()
    for key in raw:
        if key not in ("tolerance_pct", "threshold", "exclude"):
            problems.append(Problem("test", f"visual.{key}", "unknown field"))
    tolerance = _number(raw.get("tolerance_pct", defaults.tolerance_pct), 0.0, 100.0)
    if tolerance is None:
        problems.append(Problem("test", "visual.tolerance_pct", "must be a number 0..100"))
    threshold = _number(raw.get("threshold", defaults.threshold), 0.0, 1.0)
    if threshold is None:
        problems.append(Problem("test", "visual.threshold", "must be a number 0..1"))
    found: list[Problem] = []
    exclude = _field("exclude", raw.get("exclude", []), "test", "visual", found)
    problems.extend(Problem(p.where, "visual.exclude", p.message) for p in found)
    return Visual(
        tolerance_pct=defaults.tolerance_pct if tolerance is None else tolerance,
        threshold=defaults.threshold if threshold is None else threshold,
        exclude=exclude or (),
    )


def _steps(raw_steps: list[Any], prefix: str, problems: list[Problem]) -> tuple[Step, ...]:
    steps = []
    for position, raw in enumerate(raw_steps, start=1):
        step = _step(raw, f"{prefix}{position}", problems)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _where(index: str, raw: Mapping[str, Any], action: str) -> str:
    name = raw.get("name")
    named = f' "{name}"' if isinstance(name, str) and name else ""
    return f"step {index}{named} ({action or '?'})"


def _step(raw: object, index: str, problems: list[Problem]) -> Step | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(f"step {index}", "", "must be a mapping with an action"))
        return None
    fields: dict[str, Any] = dict(raw)
    action = fields.pop("action", None)
    if action is None:
        # "screenshot" is both an action and a flag on every step: a flag if another action is there.
        shorthand = [key for key in fields if key in ACTIONS and key not in COMMON_FIELDS]
        shorthand = shorthand or [key for key in fields if key in ACTIONS]
        if len(shorthand) != 1:
            problems.append(
                Problem(f"step {index}", "action", "required (one of the step actions)")
            )
            return None
        action = shorthand[0]
        primary = ACTIONS[action].primary
        value = fields.pop(action)
        if primary and value is not None:
            fields[primary] = value
    if not isinstance(action, str) or action not in ACTIONS:
        problems.append(Problem(f"step {index}", "action", f"unknown action {action!r}"))
        return None
    spec = ACTIONS[action]
    where = _where(index, fields, action)
    before = len(problems)
    allowed = set(spec.required) | set(spec.optional) | set(COMMON_FIELDS)
    for key in fields:
        if key not in allowed:
            problems.append(Problem(where, str(key), f"not used by {action}"))
    for key in spec.required:
        present = fields.get(key)
        # An empty value is meaningful ("type nothing", "expect an empty field"); nothing else is.
        if (
            present is None
            or (present == "" and (key != "value" or action == "goto"))
            or (present in ([], {}) and key != "steps")
        ):
            problems.append(Problem(where, key, "required"))
    if spec.one_of and not any(fields.get(key) not in (None, "") for key in spec.one_of):
        problems.append(Problem(where, "", f"needs one of: {', '.join(spec.one_of)}"))
    values: dict[str, Any] = {"action": action}
    for key, raw_value in fields.items():
        if key in allowed and raw_value is not None:
            parsed = _field(key, raw_value, where, index, problems)
            if parsed is not None:
                values[key] = parsed
    _check_action(action, values, where, problems)
    if len(problems) > before:
        return None
    if action == "assert_element" and "state" not in values:
        values["state"] = "present"
    if action == "store" and "source" not in values:
        values["source"] = _store_source(values)
    return Step(**values)


def _field(key: str, raw: Any, where: str, index: str, problems: list[Problem]) -> Any:
    if key in _SELECTOR_FIELDS:
        items = raw if isinstance(raw, list) else [raw]
        selectors: list[Selector] = []
        for item in items:
            if not isinstance(item, str):
                problems.append(Problem(where, key, "selectors must be strings"))
                return None
            try:
                selectors.append(parse_selector(item))
            except SelectorError as exc:
                problems.append(Problem(where, key, f"invalid selector {item!r}: {exc}"))
                return None
        return tuple(selectors)
    if key in _INT_FIELDS:
        low, high = _INT_FIELDS[key]
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            problems.append(Problem(where, key, f"must be an integer {low}..{high}"))
            return None
        return raw
    if key in _BOOL_FIELDS:
        if not isinstance(raw, bool):
            problems.append(Problem(where, key, "must be true or false"))
            return None
        return raw
    if key in ("steps", "else_steps"):
        if not isinstance(raw, list):
            problems.append(Problem(where, key, "must be a list of steps"))
            return None
        nested_prefix = f"{index}." if key == "steps" else f"{index}.else."
        return _steps(raw, nested_prefix, problems)
    if key == "files":
        items = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(item, str) and item for item in items):
            problems.append(Problem(where, key, "must be a file path or a list of them"))
            return None
        return tuple(items)
    if key == "params":
        return _str_map(raw, where, key, problems)
    if key in ("match", "state", "source"):
        choices = {"match": MATCH_MODES, "state": ELEMENT_STATES, "source": STORE_SOURCES}[key]
        if raw not in choices:
            problems.append(Problem(where, key, f"must be one of {', '.join(choices)}"))
            return None
        return raw
    if key in _STR_FIELDS:
        if isinstance(raw, bool):
            problems.append(
                Problem(
                    where, key, "must be a string (quote it: YAML reads yes/no/on/off as booleans)"
                )
            )
            return None
        if not isinstance(raw, str | int | float):
            problems.append(Problem(where, key, "must be a string"))
            return None
        return str(raw)
    return None


def _check_action(action: str, values: dict[str, Any], where: str, problems: list[Problem]) -> None:
    variable = values.get("variable")
    if variable and not NAME.match(variable):
        problems.append(Problem(where, "variable", f"invalid variable name {variable!r}"))
    if (
        values.get("match") == "regex"
        and "value" in values
        and not TEMPLATE.search(values["value"])
    ):
        try:
            re.compile(values["value"])
        except re.error as exc:
            problems.append(Problem(where, "value", f"invalid regular expression: {exc}"))
    if action == "store":
        source = values.get("source") or _store_source(values)
        for needed in _STORE_NEEDS[source]:
            if needed not in values:
                problems.append(Problem(where, needed, f"required when source is {source}"))
    elif action == "set_viewport" and "value" in values and not TEMPLATE.search(values["value"]):
        if parse_viewport(values["value"]) is None:
            problems.append(Problem(where, "value", 'must be "WIDTHxHEIGHT", e.g. 1280x800'))
    elif action == "switch_frame" and "value" in values and "target" not in values:
        if values["value"] not in {"top", "parent"} and not values["value"].isdigit():
            problems.append(Problem(where, "value", "must be top, parent or a frame index"))
    elif action == "exit" and values.get("value", "passing") not in {"passing", "failing"}:
        problems.append(Problem(where, "value", "must be passing or failing"))
    elif action == "wait" and values.get("ms", 0) <= 0 and "ms" in values:
        problems.append(Problem(where, "ms", "must be positive"))
    if action not in BLOCK_ACTIONS and "steps" in values:
        problems.append(Problem(where, "steps", f"not used by {action}"))


def _store_source(values: Mapping[str, Any]) -> str:
    if "script" in values:
        return "js"
    if "attribute" in values:
        return "attribute"
    if "target" in values:
        return "text"
    return "literal"


def _str_map(raw: object, where: str, key: str, problems: list[Problem]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        problems.append(Problem(where, key, "must be a mapping of names to values"))
        return {}
    result: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(Problem(where, key, f"invalid variable name {name!r}"))
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append(Problem(where, key, f"value of {name!r} must be a string"))
        else:
            result[name] = str(value)
    return result


# -- writing ----------------------------------------------------------------------------------
def step_to_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"action": step.action}
    defaults = Step(action=step.action)
    if step.action == "assert_element":
        defaults = dataclasses.replace(defaults, state="present")
    for spec in dataclasses.fields(Step):
        if spec.name == "action":
            continue
        value = getattr(step, spec.name)
        if value == getattr(defaults, spec.name):
            continue
        if spec.name in _SELECTOR_FIELDS:
            texts = [format_selector(selector) for selector in value]
            out[spec.name] = texts[0] if len(texts) == 1 else texts
        elif spec.name in ("steps", "else_steps"):
            out[spec.name] = [step_to_dict(child) for child in value]
        elif spec.name == "files":
            out[spec.name] = list(value)
        else:
            out[spec.name] = value
    return out


def browser_test_to_dict(test: BrowserTest) -> dict[str, Any]:
    out: dict[str, Any] = {"name": test.name}
    if test.description:
        out["description"] = test.description
    out["start_url"] = test.start_url
    if (test.viewport_width, test.viewport_height) != (1280, 800):
        out["viewport"] = f"{test.viewport_width}x{test.viewport_height}"
    if test.timeout_ms != DEFAULT_TIMEOUT_MS:
        out["timeout_ms"] = test.timeout_ms
    if test.import_only:
        out["import_only"] = True
    if test.variables:
        out["variables"] = dict(test.variables)
    if test.visual != Visual():
        visual: dict[str, Any] = {
            "tolerance_pct": test.visual.tolerance_pct,
            "threshold": test.visual.threshold,
        }
        if test.visual.exclude:
            visual["exclude"] = [format_selector(s) for s in test.visual.exclude]
        out["visual"] = visual
    out["steps"] = [step_to_dict(step) for step in test.steps]
    return out


def dump_test(test: BrowserTest) -> str:
    return yaml.safe_dump(
        browser_test_to_dict(test), sort_keys=False, allow_unicode=True, width=100
    )
