"""From our selectors to Playwright locators, trying fallbacks in order until one matches."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Locator

from bastion.browser.runner.errors import StepFailure, first_line
from bastion.browser.spec.model import Selector
from bastion.browser.spec.variables import Variables

POLL_S = 0.1


def to_locator(frame: Frame, selector: Selector) -> Locator:
    if selector.kind == "css":
        return frame.locator(f"css={selector.value}")
    if selector.kind == "xpath":
        return frame.locator(f"xpath={selector.value}")
    if selector.kind == "text":
        return frame.get_by_text(selector.value, exact=selector.exact)
    if selector.name:
        return frame.get_by_role(selector.value, name=selector.name, exact=selector.exact)  # type: ignore[arg-type]
    return frame.get_by_role(selector.value)  # type: ignore[arg-type]


def render_selectors(selectors: tuple[Selector, ...], variables: Variables) -> list[Selector]:
    return [
        replace(s, value=variables.render(s.value), name=variables.render(s.name))
        for s in selectors
    ]


async def locate(
    frame: Frame, selectors: list[Selector], timeout_ms: int, *, allow_missing: bool = False
) -> tuple[Locator | None, str]:
    """The first element matched by the first selector that matches anything, waiting up to
    ``timeout_ms``. Invalid selectors are skipped (and reported if none is valid)."""
    deadline = time.monotonic() + timeout_ms / 1000
    invalid: dict[int, str] = {}
    while True:
        for position, selector in enumerate(selectors):
            if position in invalid:
                continue
            try:
                count = await to_locator(frame, selector).count()
            except PlaywrightError as exc:
                if "closed" in str(exc).lower() or "detached" in str(exc).lower():
                    raise
                invalid[position] = f"invalid selector {selector}: {first_line(exc)}"
                continue
            if count > 0:
                return to_locator(frame, selector).first, str(selector)
        if len(invalid) == len(selectors):
            raise StepFailure("; ".join(invalid.values()))
        if allow_missing or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    if allow_missing:
        return None, ""
    tried = ", ".join(str(s) for s in selectors)
    detail = f" ({'; '.join(invalid.values())})" if invalid else ""
    raise StepFailure(f"no element matches {tried} within {timeout_ms} ms{detail}")
