"""Step actions about where the test is: screenshots, frames, tabs, dialogs, the viewport, and
the blocks (if, loops, modules) that run other steps."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from bastion.browser.runner.errors import RunAborted, StepFailure
from bastion.browser.runner.locate import POLL_S, render_selectors, to_locator
from bastion.browser.runner.step_helpers import (
    Outcome,
    as_text,
    evaluate,
    find_element,
    step_value,
    truthy,
)
from bastion.browser.spec.model import Step
from bastion.browser.spec.parse import parse_viewport

if TYPE_CHECKING:  # the engine imports the action modules
    from bastion.browser.runner.engine import Run


# -- screenshots, frames, tabs, dialogs, viewport -----------------------------------------
async def do_screenshot(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    from bastion.browser.runner.results import NamedScreenshot

    name = step_value(run, step) or f"step-{index}"
    element, used = (None, "")
    if step.target:
        element, used = await find_element(run, step, timeout_ms)
    mask = [to_locator(run.frame, s) for s in render_selectors(step.exclude, run.variables)]
    path = await run.screenshot(name, element, mask)
    if not path:
        raise StepFailure(f"screenshot {name!r} could not be taken")
    run.screenshots.append(NamedScreenshot(name=name, path=path, step=index))
    return Outcome(selector=used, note=path)


async def do_switch_frame(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    if step.target:
        locator, used = await find_element(run, step, timeout_ms)
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
    wanted = step_value(run, step)
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
        run.dialog_policy = ("accept", step_value(run, step) if step.value is not None else None)
    else:
        run.dialog_policy = ("dismiss", None)
    return Outcome(note=f"dialogs will be {run.dialog_policy[0]}ed")


async def do_set_viewport(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    size = parse_viewport(step_value(run, step))
    if size is None:
        raise StepFailure(f"invalid viewport {step_value(run, step)!r}")
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
                f"for_each expects the script to return an array, got {as_text(items)[:80]}"
            )
        if len(items) > step.max_iterations:
            raise StepFailure(f"{len(items)} items, more than max_iterations={step.max_iterations}")
        for iteration, item in enumerate(items, start=1):
            run.variables.set(step.variable, as_text(item))
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
