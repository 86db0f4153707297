"""What step actions share: outcomes, scripts, polling and matching, element lookup."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playwright.async_api import Locator

from bastion.browser.runner.errors import StepFailure
from bastion.browser.runner.locate import POLL_S, locate, render_selectors
from bastion.browser.spec.model import Step

if TYPE_CHECKING:  # the engine imports the action modules
    from bastion.browser.runner.engine import Run


_ARROW = re.compile(r"^(async\s*)?(\([^)]*\)|[A-Za-z_$][\w$]*)\s*=>")


@dataclass(frozen=True)
class Outcome:
    selector: str = ""
    note: str = ""


# -- helpers ------------------------------------------------------------------------------
def _js(script: str) -> str:
    """Accept a function, a body with ``return`` (Ghost Inspector style) or an expression."""
    stripped = script.strip()
    if stripped.startswith(("function", "async function")) or _ARROW.match(stripped):
        return stripped
    if re.search(r"\breturn\b", stripped):
        return f"async () => {{ {stripped}\n}}"
    return stripped


async def evaluate(run: Run, script: str) -> Any:
    return await run.frame.evaluate(_js(run.variables.render(script)))


async def truthy(run: Run, script: str) -> bool:
    return bool(await evaluate(run, script))


def matches(actual: str, expected: str, mode: str) -> bool:
    if mode.startswith("not_"):
        return not matches(actual, expected, mode[len("not_") :])
    if mode == "contains":
        return expected in actual
    if mode == "regex":
        return re.search(expected, actual) is not None
    return actual.strip() == expected.strip()


def describe_match(mode: str) -> str:
    return {
        "equals": "to equal",
        "contains": "to contain",
        "regex": "to match",
        "not_equals": "not to equal",
        "not_contains": "not to contain",
    }[mode]


async def poll(
    probe: Callable[[], Awaitable[str]], expected: str, mode: str, what: str, timeout_ms: int
) -> None:
    """Wait until ``probe()`` matches, failing with the last value seen after the timeout."""
    deadline = time.monotonic() + timeout_ms / 1000
    actual = ""
    while True:
        actual = await probe()
        if matches(actual, expected, mode):
            return
        if time.monotonic() >= deadline:
            shown = actual if len(actual) <= 200 else actual[:200] + "..."
            raise StepFailure(f"expected {what} {describe_match(mode)} {expected!r}, got {shown!r}")
        await asyncio.sleep(POLL_S)


async def find_element(run: Run, step: Step, timeout_ms: int) -> tuple[Locator, str]:
    locator, used = await locate(
        run.frame, render_selectors(step.target, run.variables), timeout_ms
    )
    assert locator is not None
    return locator, used


async def _state_holds(run: Run, step: Step, state: str) -> tuple[bool, str]:
    selectors = render_selectors(step.target, run.variables)
    locator, used = await locate(run.frame, selectors, 0, allow_missing=True)
    if locator is None:
        return state in {"absent", "hidden"}, ""
    checks: dict[str, Callable[[], Awaitable[bool]]] = {
        "present": lambda: _true(),
        "absent": lambda: _false(),
        "visible": locator.is_visible,
        "hidden": locator.is_hidden,
        "checked": locator.is_checked,
        "unchecked": lambda: _not(locator.is_checked()),
        "enabled": locator.is_enabled,
        "disabled": locator.is_disabled,
        "editable": locator.is_editable,
        "readonly": lambda: _not(locator.is_editable()),
    }
    return await checks[state](), used


async def _true() -> bool:
    return True


async def _false() -> bool:
    return False


async def _not(value: Awaitable[bool]) -> bool:
    return not await value


async def wait_for_state(run: Run, step: Step, timeout_ms: int, verb: str) -> Outcome:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        holds, used = await _state_holds(run, step, step.state)
        if holds:
            return Outcome(selector=used)
        if time.monotonic() >= deadline:
            tried = ", ".join(str(s) for s in step.target)
            raise StepFailure(f"{verb} {tried} to be {step.state} within {timeout_ms} ms")
        await asyncio.sleep(POLL_S)


def step_value(run: Run, step: Step) -> str:
    return run.variables.render(step.value or "")


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
