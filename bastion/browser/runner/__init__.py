"""The runner: executes browser tests in the system Chromium and returns typed results."""

from bastion.browser.runner.results import NamedScreenshot, RunResult, StepResult, to_junit
from bastion.browser.runner.session import LAUNCH_ARGS, BrowserSession, RunOptions

__all__ = [
    "LAUNCH_ARGS",
    "BrowserSession",
    "NamedScreenshot",
    "RunOptions",
    "RunResult",
    "StepResult",
    "to_junit",
]
