"""Editing a stored test the way the UI does: one step at a time, or the whole test as YAML.

The operations work on the test's stored definition (the YAML format's structure, steps
numbered from 1 in their list); ``edit_steps`` applies one and saves the result through
``services.save_test`` (validated, versioned, audited) in one transaction, refusing a stale
edit (the test changed since the editor loaded it).

A step is addressed by its path, numbered as run results number it: ``3`` is the third
top-level step, ``3.2`` the second step inside block step 3 (``if``/``while``/``repeat``/
``for_each``), ``3.else.1`` the first of its ``else`` steps. An edit names the list it works in
(``block``: ``""`` for the top level, ``"3"`` or ``"3.else"``) and a 1-based ``index`` in it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from bastion.browser.models import StoredTest
from bastion.browser.services import save_test
from bastion.browser.spec import SpecError, load_test
from bastion.browser.spec.model import ACTIONS, BLOCK_ACTIONS, COMMON_FIELDS
from bastion.core.access import Principal, require_role
from bastion.core.models import Role

MAX_STEPS = 500
MAX_YAML = 1024 * 1024
MAX_PATH = 100

Op = Literal["add", "update", "move", "duplicate", "toggle", "delete"]
OPS: tuple[str, ...] = ("add", "update", "move", "duplicate", "toggle", "delete")

# How the step form shows and parses each field.
SELECTOR_FIELDS = ("target", "to", "exclude")
LIST_FIELDS = ("files",)
INT_FIELDS = ("ms", "x", "y", "times", "max_iterations", "timeout_ms")
BOOL_FIELDS = ("optional", "soft", "disabled", "screenshot", "opens_tab", "allow_download")
BLOCK_FIELDS = ("steps", "else_steps")
FLAG_FIELDS = ("optional", "soft", "disabled", "screenshot")


@dataclass(frozen=True)
class StepEdit:
    """One editor operation. ``index`` is 1-based in the list ``block`` names (``""``: the
    top level); ``step`` is the new step for add/update; for move, ``to`` is the new position
    (drag and drop) or else ``delta`` is -1 (up) or +1 (down)."""

    op: Op
    index: int = 0
    step: Mapping[str, Any] = field(default_factory=dict)
    delta: int = 0
    block: str = ""
    to: int = 0

    @property
    def path(self) -> str:
        """The edited step's path (``3``, ``3.else.2``), as errors and results name it."""
        return join_path(self.block, self.index)


def join_path(block: str, index: int) -> str:
    """The path of step ``index`` of the list ``block``: (``"3.else"``, 2) -> ``"3.else.2"``."""
    return f"{block}.{index}" if block else str(index)


def split_path(path: str) -> tuple[str, int]:
    """``"3.else.2"`` -> (``"3.else"``, 2); ``"4"`` -> (``""``, 4); (``""``, 0) when not a path."""
    block, _, last = path.strip().rpartition(".")
    if not last.isdigit() or len(path) > MAX_PATH:
        return "", 0
    return block, int(last)


def _no_block(block: str) -> ValidationError:
    return ValidationError({"index": [f"There is no block of steps {block!r} in the test."]})


def steps_list(definition: dict[str, Any], block: str) -> list[Any]:
    """The (mutable) list of steps ``block`` names inside ``definition``."""
    current = definition.get("steps")
    if not isinstance(current, list):
        current = definition["steps"] = list(current or [])
    if not block:
        return current
    tokens = block.split(".")
    if len(block) > MAX_PATH:
        raise _no_block(block)
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if not token.isdigit() or not 1 <= int(token) <= len(current):
            raise _no_block(block)
        step = current[int(token) - 1]
        key = "steps"
        if position + 1 < len(tokens) and tokens[position + 1] == "else":
            key, position = "else_steps", position + 1
        action = step.get("action") if isinstance(step, dict) else None
        if action not in BLOCK_ACTIONS or (key == "else_steps" and action != "if"):
            raise _no_block(block)
        nested = step.get(key)
        if not isinstance(nested, list):
            nested = step[key] = []
        current = nested
        position += 1
    return current


def _index_error(index: int, count: int) -> ValidationError:
    return ValidationError({"index": [f"There is no step {index} (the test has {count})."]})


def apply_edit(definition: Mapping[str, Any], edit: StepEdit) -> dict[str, Any]:
    """The definition after ``edit`` (a copy); ValidationError for an impossible edit."""
    out = copy.deepcopy(dict(definition))
    steps = steps_list(out, edit.block)
    count = len(steps)
    position = edit.index - 1
    if edit.op == "add":
        if count >= MAX_STEPS:
            raise ValidationError({"index": [f"A test has at most {MAX_STEPS} steps."]})
        where = count if edit.index in (0, count + 1) else position
        if not 0 <= where <= count:
            raise _index_error(edit.index, count)
        steps.insert(where, dict(edit.step))
    elif not 0 <= position < count:
        raise _index_error(edit.index, count)
    elif edit.op == "update":
        steps[position] = dict(edit.step)
    elif edit.op == "move" and edit.to:
        if not 1 <= edit.to <= count:
            raise ValidationError(
                {"to": [f"There is no position {edit.to} (the list has {count})."]}
            )
        steps.insert(edit.to - 1, steps.pop(position))
    elif edit.op == "move":
        other = position + (1 if edit.delta > 0 else -1)
        if 0 <= other < count:
            steps[position], steps[other] = steps[other], steps[position]
    elif edit.op == "duplicate":
        if count >= MAX_STEPS:
            raise ValidationError({"index": [f"A test has at most {MAX_STEPS} steps."]})
        steps.insert(position + 1, copy.deepcopy(steps[position]))
    elif edit.op == "toggle":
        step = dict(steps[position]) if isinstance(steps[position], Mapping) else {}
        if step.get("disabled"):
            step.pop("disabled")
        else:
            step["disabled"] = True
        steps[position] = step
    elif edit.op == "delete":
        del steps[position]
    else:
        raise ValidationError({"op": [f"Unknown operation {edit.op!r}."]})
    return out


def edit_steps(
    principal: Principal, test: StoredTest, edit: StepEdit, expected_version: int | None
) -> StoredTest:
    """Apply one step edit and save (audited as ``browser.test.update`` with the edit)."""
    require_role(principal, test.project.organization, Role.MEMBER)
    with transaction.atomic():
        current = StoredTest.objects.select_for_update().get(pk=test.pk)
        _check_version(current, expected_version)
        definition = apply_edit(current.definition, edit)
        details: dict[str, Any] = {"edit": edit.op, "index": edit.index}
        if edit.block:
            details["block"] = edit.block
        if edit.op == "move" and edit.to:
            details["to"] = edit.to
        if edit.op in ("add", "update"):
            _check_step(definition, edit)
        return save_test(principal, current.project, definition, current.slug, details)


def _check_step(definition: Mapping[str, Any], edit: StepEdit) -> None:
    """Refuse an added or edited step the format rejects, the problems of that step also
    under its fields (the form shows them next to each field), every problem under
    ``definition`` naming the step and the field."""
    try:
        load_test(dict(definition))
    except SpecError as exc:
        steps = steps_list(copy.deepcopy(dict(definition)), edit.block)
        where = join_path(edit.block, edit.index or len(steps))
        errors: dict[str, list[str]] = {"definition": [str(p) for p in exc.problems]}
        for problem in exc.problems:
            mine = problem.where == f"step {where}" or problem.where.startswith(f"step {where} ")
            if mine and problem.field:
                errors.setdefault(problem.field, []).append(problem.message)
        raise ValidationError(errors) from exc


def _check_version(test: StoredTest, expected: int | None) -> None:
    if expected is not None and expected != test.version:
        raise ValidationError(
            {
                "version": [
                    f"The test changed since you opened it (now v{test.version}, you edited "
                    f"v{expected}); reload and try again."
                ]
            }
        )


def parse_yaml(text: str) -> dict[str, Any]:
    if len(text) > MAX_YAML:
        raise ValidationError({"yaml": ["The test is too large."]})
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError({"yaml": [f"Not valid YAML: {exc}"]}) from exc
    if not isinstance(data, dict):
        raise ValidationError({"yaml": ["The test must be a mapping (name, start_url, steps)."]})
    return data


def save_yaml(
    principal: Principal, test: StoredTest, text: str, expected_version: int | None
) -> StoredTest:
    """Replace the whole test with its YAML text (validated, audited)."""
    require_role(principal, test.project.organization, Role.MEMBER)
    definition = parse_yaml(text)
    with transaction.atomic():
        current = StoredTest.objects.select_for_update().get(pk=test.pk)
        _check_version(current, expected_version)
        return save_test(principal, current.project, definition, current.slug, {"edit": "yaml"})


def update_settings(
    principal: Principal,
    test: StoredTest,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> StoredTest:
    """Change top-level fields (name, start URL, variables, visual...) and keep the steps."""
    require_role(principal, test.project.organization, Role.MEMBER)
    with transaction.atomic():
        current = StoredTest.objects.select_for_update().get(pk=test.pk)
        _check_version(current, expected_version)
        definition = {**copy.deepcopy(current.definition), **changes}
        for key in [k for k, v in changes.items() if v in (None, {}, "")]:
            if key not in ("name", "start_url"):
                definition.pop(key, None)
        details = {"edit": "settings", "fields": sorted(changes)}
        return save_test(principal, current.project, definition, current.slug, details)


# -- the step form ------------------------------------------------------------------------
def fields_of(action: str) -> list[str]:
    """The action's own fields, required first (the form shows the common flags apart)."""
    spec = ACTIONS[action]
    return [name for name in (*spec.required, *spec.optional) if name not in COMMON_FIELDS]


def parse_lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


def parse_pairs(raw: str, what: str) -> dict[str, str]:
    """``name=value`` lines (blank lines ignored) into a mapping."""
    pairs: dict[str, str] = {}
    for line in parse_lines(raw):
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValidationError({what: [f"Write one name=value per line, not {line!r}."]})
        pairs[name.strip()] = value.strip()
    return pairs


def step_from_form(data: Mapping[str, str]) -> dict[str, Any]:
    """A step mapping from the editor's form (strings); the spec's validation judges it."""
    action = (data.get("action") or "").strip()
    if action not in ACTIONS:
        raise ValidationError({"action": ["Choose a step kind."]})
    step: dict[str, Any] = {"action": action}
    for name in (*fields_of(action), "name", "when", "timeout_ms"):
        raw = data.get(name)
        if raw is None or (raw.strip() == "" and name != "value"):
            continue
        step[name] = _form_value(name, raw)
    if action in BLOCK_ACTIONS and "steps" not in step:
        step["steps"] = []  # an empty block: its steps are added inside it one by one
    if action in ("type", "assert_value", "assert_variable") and "value" not in step:
        step["value"] = ""
    if step.get("value") == "" and action not in ("type", "assert_value", "assert_variable"):
        step.pop("value")
    for name in BOOL_FIELDS:
        if data.get(name) in ("on", "true", "1"):
            step[name] = True
    if action == "while" and data.get("at_least_once") in ("on", "true", "1"):
        step["at_least_once"] = True
    return step


def _form_value(name: str, raw: str) -> Any:
    if name in SELECTOR_FIELDS or name in LIST_FIELDS:
        lines = parse_lines(raw)
        return lines[0] if len(lines) == 1 else lines
    if name in INT_FIELDS:
        text = raw.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    if name == "params":
        return parse_pairs(raw, "params")
    if name in BLOCK_FIELDS:
        try:
            nested = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValidationError({name: [f"Not valid YAML: {exc}"]}) from exc
        return nested if nested is not None else []
    return raw


def form_initial(step: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for an existing step (the inverse of ``step_from_form``)."""
    initial: dict[str, str] = {}
    for name, value in step.items():
        if name in BLOCK_FIELDS:
            initial[name] = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
        elif name == "params" and isinstance(value, Mapping):
            initial[name] = "\n".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            initial[name] = "\n".join(str(item) for item in value)
        elif isinstance(value, bool):
            initial[name] = "on" if value else ""
        else:
            initial[name] = str(value)
    return initial
