"""What each step action does to the page. Every wait is bounded by the step's timeout."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from playwright.async_api import Locator
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bastion.browser.runner.errors import ExitTest, RunAborted, StepFailure
from bastion.browser.runner.locate import POLL_S, locate, render_selectors, to_locator
from bastion.browser.spec.model import MAX_WAIT_MS, Selector, Step
from bastion.browser.spec.parse import parse_viewport

_ARROW = re.compile(r"^(async\s*)?(\([^)]*\)|[A-Za-z_$][\w$]*)\s*=>")


@dataclass(frozen=True)
class Outcome:
    selector: str = ""
    note: str = ""


if TYPE_CHECKING:  # the engine imports this module
    from bastion.browser.runner.engine import Run

Handler = Callable[["Run", Step, str, int], Awaitable[Outcome]]


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


def _describe_match(mode: str) -> str:
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
            raise StepFailure(
                f"expected {what} {_describe_match(mode)} {expected!r}, got {shown!r}"
            )
        await asyncio.sleep(POLL_S)


async def _element(run: Run, step: Step, timeout_ms: int) -> tuple[Locator, str]:
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


async def _element_state(run: Run, step: Step, timeout_ms: int, verb: str) -> Outcome:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        holds, used = await _state_holds(run, step, step.state)
        if holds:
            return Outcome(selector=used)
        if time.monotonic() >= deadline:
            tried = ", ".join(str(s) for s in step.target)
            raise StepFailure(f"{verb} {tried} to be {step.state} within {timeout_ms} ms")
        await asyncio.sleep(POLL_S)


def _value(run: Run, step: Step) -> str:
    return run.variables.render(step.value or "")


# -- navigation ---------------------------------------------------------------------------
async def do_goto(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    url = urljoin(run.base_url or run.page.url, _value(run, step))
    try:
        response = await run.page.goto(url, timeout=timeout_ms)
    except PlaywrightTimeout as exc:
        raise StepFailure(f"page did not load within {timeout_ms} ms: {url}") from exc
    run.frame = run.page.main_frame
    status = response.status if response is not None else 0
    return Outcome(note=f"HTTP {status}" if status else "")


async def do_history(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    timeout = timeout_ms
    if step.action == "go_back":
        await run.page.go_back(timeout=timeout)
    elif step.action == "go_forward":
        await run.page.go_forward(timeout=timeout)
    else:
        await run.page.reload(timeout=timeout)
    run.frame = run.page.main_frame
    return Outcome()


# -- interaction --------------------------------------------------------------------------
async def do_element(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    locator, used = await _element(run, step, timeout_ms)
    action = step.action
    if action == "click":
        await locator.click(timeout=timeout_ms)
    elif action == "double_click":
        await locator.dblclick(timeout=timeout_ms)
    elif action == "type":
        await locator.fill(_value(run, step), timeout=timeout_ms)
    elif action == "clear":
        await locator.fill("", timeout=timeout_ms)
    elif action == "check":
        await locator.check(timeout=timeout_ms)
    elif action == "uncheck":
        await locator.uncheck(timeout=timeout_ms)
    elif action == "hover":
        await locator.hover(timeout=timeout_ms)
    elif action == "select":
        await _select(locator, _value(run, step), timeout_ms)
    elif action == "upload":
        await locator.set_input_files(
            [_upload_path(run, name) for name in step.files], timeout=timeout_ms
        )
    elif action == "drag":
        destination, _ = await locate(
            run.frame, render_selectors(step.to, run.variables), timeout_ms
        )
        assert destination is not None
        await locator.drag_to(destination, timeout=timeout_ms)
    return Outcome(selector=used)


async def _select(locator: Locator, option: str, timeout_ms: int) -> None:
    kind, sep, rest = option.partition("=")
    if sep and kind == "label":
        await locator.select_option(label=rest, timeout=timeout_ms)
    elif sep and kind == "value":
        await locator.select_option(value=rest, timeout=timeout_ms)
    elif sep and kind == "index" and rest.isdigit():
        await locator.select_option(index=int(rest), timeout=timeout_ms)
    else:
        await locator.select_option(option, timeout=timeout_ms)


def _upload_path(run: Run, name: str) -> str:
    path = (run.files_root / name).resolve()
    if not path.is_relative_to(run.files_root.resolve()):
        raise StepFailure(f"upload file {name!r} is outside {run.files_root}")
    if not path.is_file():
        raise StepFailure(f"upload file {name!r} not found in {run.files_root}")
    return str(path)


async def do_press(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    key = _value(run, step)
    if step.target:
        locator, used = await _element(run, step, timeout_ms)
        await locator.press(key, timeout=timeout_ms)
        return Outcome(selector=used)
    await run.page.keyboard.press(key)
    return Outcome()


async def do_scroll(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    if step.target:
        locator, used = await _element(run, step, timeout_ms)
        await locator.scroll_into_view_if_needed(timeout=timeout_ms)
        return Outcome(selector=used)
    await run.frame.evaluate("([x, y]) => window.scrollBy(x, y)", [step.x, step.y])
    return Outcome()


# -- waits and assertions -----------------------------------------------------------------
async def do_wait(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    await asyncio.sleep(min(step.ms, MAX_WAIT_MS) / 1000)
    return Outcome()


async def do_wait_for_element(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return await _element_state(run, step, timeout_ms, "waited for")


async def do_assert_element(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return await _element_state(run, step, timeout_ms, "expected")


async def _text_of(
    run: Run, step: Step, timeout_ms: int
) -> tuple[Callable[[], Awaitable[str]], str]:
    if not step.target:
        return (lambda: run.frame.locator("body").inner_text(timeout=timeout_ms)), ""
    locator, used = await _element(run, step, timeout_ms)
    return (lambda: locator.inner_text(timeout=timeout_ms)), used


async def do_text(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    probe, used = await _text_of(run, step, timeout_ms)
    mode = step.match if step.action == "assert_text" or step.match != "equals" else "contains"
    what = f"text of {used}" if used else "page text"
    await poll(probe, _value(run, step), mode, what, timeout_ms)
    return Outcome(selector=used)


async def do_assert_value(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    locator, used = await _element(run, step, timeout_ms)
    await poll(
        lambda: locator.input_value(timeout=timeout_ms),
        _value(run, step),
        step.match,
        f"value of {used}",
        timeout_ms,
    )
    return Outcome(selector=used)


async def do_url_title(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    expected = _value(run, step)
    if step.action == "assert_title":
        await poll(run.page.title, expected, step.match, "title", timeout_ms)
        return Outcome()
    mode = step.match
    if step.action == "wait_for_url" and mode == "equals":
        mode = "contains"
    if mode == "equals":
        expected = urljoin(run.base_url or run.page.url, expected)

    async def current() -> str:
        return run.page.url

    await poll(current, expected, mode, "URL", timeout_ms)
    return Outcome()


async def do_assert_js(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    result = await evaluate(run, step.script)
    if not result:
        raise StepFailure(f"JavaScript returned {json.dumps(result)}, expected a true value")
    return Outcome()


async def do_assert_variable(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    actual = run.variables.get(step.variable)
    if not matches(actual, _value(run, step), step.match):
        raise StepFailure(
            f"expected variable {step.variable!r} {_describe_match(step.match)} "
            f"{_value(run, step)!r}, got {actual!r}"
        )
    return Outcome()


async def do_assert_dialog(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    async def last() -> str:
        return run.last_dialog

    await poll(last, _value(run, step), step.match, "last dialog message", timeout_ms)
    return Outcome()


# -- variables and scripts ----------------------------------------------------------------
def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def do_store(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    source, used, value = step.source, "", ""
    if source == "literal":
        value = _value(run, step)
    elif source == "js":
        value = _as_text(await evaluate(run, step.script))
    elif source == "title":
        value = await run.page.title()
    elif source == "url":
        value = run.page.url
    elif source == "count":
        selectors = render_selectors(step.target, run.variables)
        _, used = await locate(run.frame, selectors, 0, allow_missing=True)
        value = str(await _count_used(run, selectors, used)) if used else "0"
    else:
        locator, used = await _element(run, step, timeout_ms)
        if source == "text":
            value = await locator.inner_text(timeout=timeout_ms)
        elif source == "value":
            value = await locator.input_value(timeout=timeout_ms)
        else:
            value = (
                await locator.get_attribute(
                    run.variables.render(step.attribute), timeout=timeout_ms
                )
                or ""
            )
    run.variables.set(step.variable, value)
    return Outcome(selector=used, note=f"{step.variable} = {value!r}")


async def _count_used(run: Run, selectors: list[Selector], used: str) -> int:
    for selector in selectors:
        if str(selector) == used:
            return await to_locator(run.frame, selector).count()
    return 0


async def do_execute_js(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    result = await evaluate(run, step.script)
    if step.variable:
        run.variables.set(step.variable, _as_text(result))
        return Outcome(note=f"{step.variable} = {_as_text(result)!r}")
    return Outcome()


async def do_log(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return Outcome(note=_value(run, step))


async def do_exit(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    raise ExitTest((step.value or "passing") == "passing")


# -- screenshots, frames, tabs, dialogs, viewport -----------------------------------------
async def do_screenshot(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    from bastion.browser.runner.results import NamedScreenshot

    name = _value(run, step) or f"step-{index}"
    element, used = (None, "")
    if step.target:
        element, used = await _element(run, step, timeout_ms)
    mask = [to_locator(run.frame, s) for s in render_selectors(step.exclude, run.variables)]
    path = await run.screenshot(name, element, mask)
    if not path:
        raise StepFailure(f"screenshot {name!r} could not be taken")
    run.screenshots.append(NamedScreenshot(name=name, path=path, step=index))
    return Outcome(selector=used, note=path)


async def do_switch_frame(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    if step.target:
        locator, used = await _element(run, step, timeout_ms)
        handle = await locator.element_handle(timeout=timeout_ms)
        frame = await handle.content_frame() if handle is not None else None
        if frame is None:
            raise StepFailure(f"{used} is not a frame")
        run.frame = frame
        return Outcome(selector=used)
    where = step.value or "top"
    if where == "top":
        run.frame = run.page.main_frame
    elif where == "parent":
        run.frame = run.frame.parent_frame or run.page.main_frame
    else:
        children = run.frame.child_frames
        if int(where) >= len(children):
            raise StepFailure(
                f"frame index {where} out of range: the page has {len(children)} frame(s)"
            )
        run.frame = children[int(where)]
    return Outcome()


async def do_switch_tab(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    wanted = _value(run, step)
    deadline = time.monotonic() + timeout_ms / 1000
    # A tab opened by an earlier step may still be on its way.
    while run.expected_popups > 0 and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S / 2)
    while True:
        pages = [page for page in run.context.pages if not page.is_closed()]
        chosen = None
        if wanted == "last" and pages:
            chosen = pages[-1]
        elif wanted == "first" and pages:
            chosen = pages[0]
        elif wanted.isdigit():
            chosen = pages[int(wanted)] if int(wanted) < len(pages) else None
        else:
            chosen = next((page for page in pages if wanted in page.url), None)
        if chosen is not None:
            break
        if time.monotonic() >= deadline:
            raise StepFailure(f"no tab matches {wanted!r} ({len(pages)} open)")
        await asyncio.sleep(POLL_S)
    run.page = chosen
    run.frame = chosen.main_frame
    await chosen.bring_to_front()
    await chosen.wait_for_load_state(timeout=timeout_ms)
    return Outcome(note=chosen.url)


async def do_close_tab(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    await run.page.close()
    pages = [page for page in run.context.pages if not page.is_closed()]
    if not pages:
        raise RunAborted("closed the last tab")
    run.page = pages[-1]
    run.frame = run.page.main_frame
    return Outcome()


async def do_dialog_policy(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    if step.action == "accept_dialog":
        run.dialog_policy = ("accept", _value(run, step) if step.value is not None else None)
    else:
        run.dialog_policy = ("dismiss", None)
    return Outcome(note=f"dialogs will be {run.dialog_policy[0]}ed")


async def do_set_viewport(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    size = parse_viewport(_value(run, step))
    if size is None:
        raise StepFailure(f"invalid viewport {_value(run, step)!r}")
    await run.page.set_viewport_size({"width": size[0], "height": size[1]})
    return Outcome()


# -- blocks -------------------------------------------------------------------------------
async def do_if(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    if await truthy(run, step.script):
        await run.run_steps(step.steps, f"{index}.")
        return Outcome(note="condition true")
    await run.run_steps(step.else_steps, f"{index}.else.")
    return Outcome(note="condition false")


async def do_loop(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    iterations = 0
    if step.action == "repeat":
        for iteration in range(1, step.times + 1):
            await run.run_steps(step.steps, f"{index}.{iteration}.")
            iterations = iteration
        return Outcome(note=f"{iterations} iterations")
    if step.action == "for_each":
        items = await evaluate(run, step.script)
        if not isinstance(items, list):
            raise StepFailure(
                f"for_each expects the script to return an array, got {_as_text(items)[:80]}"
            )
        if len(items) > step.max_iterations:
            raise StepFailure(f"{len(items)} items, more than max_iterations={step.max_iterations}")
        for iteration, item in enumerate(items, start=1):
            run.variables.set(step.variable, _as_text(item))
            await run.run_steps(step.steps, f"{index}.{iteration}.")
            iterations = iteration
        return Outcome(note=f"{iterations} iterations")
    # while (and do ... repeat_if with at_least_once)
    while (step.at_least_once and iterations == 0) or await truthy(run, step.script):
        iterations += 1
        if iterations > step.max_iterations:
            raise StepFailure(f"loop still running after max_iterations={step.max_iterations}")
        await run.run_steps(step.steps, f"{index}.{iterations}.")
    return Outcome(note=f"{iterations} iterations")


async def do_module(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    await run.run_module(step, index)
    return Outcome(note=f"module {step.module}")


HANDLERS: dict[str, Handler] = {
    "goto": do_goto,
    "go_back": do_history,
    "go_forward": do_history,
    "refresh": do_history,
    **{
        name: do_element
        for name in (
            "click",
            "double_click",
            "type",
            "clear",
            "check",
            "uncheck",
            "hover",
            "select",
            "upload",
            "drag",
        )
    },
    "press": do_press,
    "scroll": do_scroll,
    "wait": do_wait,
    "wait_for_element": do_wait_for_element,
    "wait_for_text": do_text,
    "wait_for_url": do_url_title,
    "assert_element": do_assert_element,
    "assert_text": do_text,
    "assert_value": do_assert_value,
    "assert_url": do_url_title,
    "assert_title": do_url_title,
    "assert_js": do_assert_js,
    "assert_variable": do_assert_variable,
    "assert_dialog": do_assert_dialog,
    "store": do_store,
    "execute_js": do_execute_js,
    "log": do_log,
    "exit": do_exit,
    "screenshot": do_screenshot,
    "switch_frame": do_switch_frame,
    "switch_tab": do_switch_tab,
    "close_tab": do_close_tab,
    "accept_dialog": do_dialog_policy,
    "dismiss_dialog": do_dialog_policy,
    "set_viewport": do_set_viewport,
    "if": do_if,
    "while": do_loop,
    "repeat": do_loop,
    "for_each": do_loop,
    "module": do_module,
}


async def perform(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return await HANDLERS[step.action](run, step, index, timeout_ms)
