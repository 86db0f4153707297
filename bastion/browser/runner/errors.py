"""The runner's own failures, and the one place Playwright's exceptions are translated."""

from __future__ import annotations

import asyncio

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bastion.browser.spec.variables import UnknownVariable


class StepFailure(Exception):
    """A step did not do what it should; the message is shown to the user as the reason."""


class RunAborted(StepFailure):
    """The page or browser is gone (crash, hang, endless dialogs): no later step can run."""


class ExitTest(Exception):
    def __init__(self, passing: bool) -> None:
        super().__init__("passing" if passing else "failing")
        self.passing = passing


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip(" =")
        if line and not line.startswith(("Call log", "Logs")):
            return line
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    """A one-line, human reason for a failed step."""
    if isinstance(exc, StepFailure | UnknownVariable):
        return str(exc)
    if isinstance(exc, PlaywrightTimeout):
        return f"timed out: {first_line(exc)}"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, PlaywrightError):
        text = first_line(exc)
        if "net::ERR_" in text:
            code = text[text.index("net::ERR_") :].split()[0]
            return f"page did not load: {code}"
        if "closed" in text.lower():
            return f"page or browser closed: {text}"
        return text
    return f"{type(exc).__name__}: {exc}"
