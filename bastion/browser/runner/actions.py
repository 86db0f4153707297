"""What each step action does to the page. Every wait is bounded by the step's timeout.

``perform`` dispatches on the action; frames, tabs, dialogs and blocks are in ``context_steps``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from playwright.async_api import Locator
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bastion.browser.runner.context_steps import (
    do_close_tab,
    do_dialog_policy,
    do_if,
    do_loop,
    do_module,
    do_screenshot,
    do_set_viewport,
    do_switch_frame,
    do_switch_tab,
)
from bastion.browser.runner.errors import ExitTest, StepFailure
from bastion.browser.runner.locate import locate, render_selectors, to_locator
from bastion.browser.runner.mailbox import do_assert_email, do_store_email, do_wait_for_email
from bastion.browser.runner.step_helpers import (
    Outcome,
    as_text,
    describe_match,
    evaluate,
    find_element,
    matches,
    poll,
    step_value,
    truthy,
    wait_for_state,
)
from bastion.browser.spec.model import MAX_WAIT_MS, Selector, Step

if TYPE_CHECKING:  # the engine imports this module
    from bastion.browser.runner.engine import Run

Handler = Callable[["Run", Step, str, int], Awaitable[Outcome]]
__all__ = ["HANDLERS", "Outcome", "perform", "truthy"]


# -- navigation ---------------------------------------------------------------------------
async def do_goto(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    url = urljoin(run.base_url or run.page.url, step_value(run, step))
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
    locator, used = await find_element(run, step, timeout_ms)
    action = step.action
    if action == "click":
        await locator.click(timeout=timeout_ms)
    elif action == "double_click":
        await locator.dblclick(timeout=timeout_ms)
    elif action == "type":
        await locator.fill(step_value(run, step), timeout=timeout_ms)
    elif action == "clear":
        await locator.fill("", timeout=timeout_ms)
    elif action == "check":
        await locator.check(timeout=timeout_ms)
    elif action == "uncheck":
        await locator.uncheck(timeout=timeout_ms)
    elif action == "hover":
        await locator.hover(timeout=timeout_ms)
    elif action == "select":
        await _select(locator, step_value(run, step), timeout_ms)
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
    key = step_value(run, step)
    if step.target:
        locator, used = await find_element(run, step, timeout_ms)
        await locator.press(key, timeout=timeout_ms)
        return Outcome(selector=used)
    await run.page.keyboard.press(key)
    return Outcome()


async def do_scroll(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    if step.target:
        locator, used = await find_element(run, step, timeout_ms)
        await locator.scroll_into_view_if_needed(timeout=timeout_ms)
        return Outcome(selector=used)
    await run.frame.evaluate("([x, y]) => window.scrollBy(x, y)", [step.x, step.y])
    return Outcome()


# -- waits and assertions -----------------------------------------------------------------
async def do_wait(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    await asyncio.sleep(min(step.ms, MAX_WAIT_MS) / 1000)
    return Outcome()


async def do_wait_for_element(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return await wait_for_state(run, step, timeout_ms, "waited for")


async def do_assert_element(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return await wait_for_state(run, step, timeout_ms, "expected")


async def _text_of(
    run: Run, step: Step, timeout_ms: int
) -> tuple[Callable[[], Awaitable[str]], str]:
    if not step.target:
        return (lambda: run.frame.locator("body").inner_text(timeout=timeout_ms)), ""
    locator, used = await find_element(run, step, timeout_ms)
    return (lambda: locator.inner_text(timeout=timeout_ms)), used


async def do_text(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    probe, used = await _text_of(run, step, timeout_ms)
    mode = step.match if step.action == "assert_text" or step.match != "equals" else "contains"
    what = f"text of {used}" if used else "page text"
    await poll(probe, step_value(run, step), mode, what, timeout_ms)
    return Outcome(selector=used)


async def do_assert_value(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    locator, used = await find_element(run, step, timeout_ms)
    await poll(
        lambda: locator.input_value(timeout=timeout_ms),
        step_value(run, step),
        step.match,
        f"value of {used}",
        timeout_ms,
    )
    return Outcome(selector=used)


async def do_url_title(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    expected = step_value(run, step)
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
    if not matches(actual, step_value(run, step), step.match):
        raise StepFailure(
            f"expected variable {step.variable!r} {describe_match(step.match)} "
            f"{step_value(run, step)!r}, got {actual!r}"
        )
    return Outcome()


async def do_assert_dialog(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    async def last() -> str:
        return run.last_dialog

    await poll(last, step_value(run, step), step.match, "last dialog message", timeout_ms)
    return Outcome()


# -- variables and scripts ----------------------------------------------------------------


async def do_store(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    source, used, value = step.source, "", ""
    if source == "literal":
        value = step_value(run, step)
    elif source == "js":
        value = as_text(await evaluate(run, step.script))
    elif source == "title":
        value = await run.page.title()
    elif source == "url":
        value = run.page.url
    elif source == "count":
        selectors = render_selectors(step.target, run.variables)
        _, used = await locate(run.frame, selectors, 0, allow_missing=True)
        value = str(await _count_used(run, selectors, used)) if used else "0"
    else:
        locator, used = await find_element(run, step, timeout_ms)
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
        run.variables.set(step.variable, as_text(result))
        return Outcome(note=f"{step.variable} = {as_text(result)!r}")
    return Outcome()


async def do_log(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return Outcome(note=step_value(run, step))


async def do_exit(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    raise ExitTest((step.value or "passing") == "passing")


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
    "wait_for_email": do_wait_for_email,
    "assert_email": do_assert_email,
    "store_email": do_store_email,
}


async def perform(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    return await HANDLERS[step.action](run, step, index, timeout_ms)
