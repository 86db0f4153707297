"""The runner: executes browser tests in the system Chromium and returns typed results.

The session (Playwright) lives in ``bastion.browser.runner.session``; it is not re-exported here,
so reading results (JUnit, pages, every CLI command's Django setup) does not import Playwright.
"""

from bastion.browser.runner.results import NamedScreenshot, RunResult, StepResult, to_junit

__all__ = ["NamedScreenshot", "RunResult", "StepResult", "to_junit"]
