"""A browser session: one Chromium process running tests, each in a fresh context.

``BrowserSession`` launches the system Chromium through Playwright (never a downloaded browser),
relaunches it if it crashed, and runs tests with ``run``; ``run_tests`` runs several at once. The
agent's ``browser`` executor and ``bastion test run`` both use this.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from bastion.browser.runner.engine import Run
from bastion.browser.runner.errors import describe
from bastion.browser.runner.locate import render_selectors, to_locator
from bastion.browser.runner.mailbox import Mailbox
from bastion.browser.runner.results import RunResult, RunStatus, StepResult
from bastion.browser.runner.video import ensure_ffmpeg
from bastion.browser.spec.model import BrowserTest, Step
from bastion.browser.spec.modules import ModuleResolver, check_modules, no_modules
from bastion.browser.spec.parse import SpecError
from bastion.browser.spec.variables import UnknownVariable, Variables

log = logging.getLogger(__name__)

CHROMIUM = os.environ.get("BASTION_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
LAUNCH_TIMEOUT_S = 60.0
CONTEXT_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RunOptions:
    base_url: str = ""
    artifacts_dir: Path | None = None
    record_video: bool = True
    screenshot_every_step: bool = False
    final_screenshot: bool = True
    suite_variables: Mapping[str, str] = field(default_factory=dict)
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    modules: ModuleResolver = no_modules
    files_root: Path = Path()
    mail_domain: str | None = None
    max_dialogs_per_step: int = 20
    # The whole run, all steps included, is cut off after this.
    max_run_s: float = 900.0
    on_step: Callable[[StepResult], None] | None = None
    # Where email steps read mail (None: email steps fail with a clear reason).
    mailbox: Mailbox | None = None
    # The unique part of the run's addresses (``run.id``); the server picks it for agent runs.
    run_id: str | None = None


class BrowserSession:
    """``async with BrowserSession() as session: result = await session.run(test, options)``."""

    def __init__(self, *, executable: str = CHROMIUM, video: bool = True) -> None:
        self.executable = executable
        self.video_available = ensure_ffmpeg() if video else False
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> BrowserSession:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._playwright is None:
            self._playwright = await asyncio.wait_for(async_playwright().start(), LAUNCH_TIMEOUT_S)
        await self.browser()

    async def browser(self) -> Browser:
        """The running browser, launched again if it died."""
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._playwright is None:
                raise RuntimeError("BrowserSession not started")
            self._browser = await asyncio.wait_for(
                self._playwright.chromium.launch(
                    executable_path=self.executable, headless=True, args=list(LAUNCH_ARGS)
                ),
                LAUNCH_TIMEOUT_S,
            )
            return self._browser

    async def close(self) -> None:
        if self._browser is not None:
            try:
                await asyncio.wait_for(self._browser.close(), CLOSE_TIMEOUT_S)
            except (PlaywrightError, TimeoutError) as exc:
                log.warning("browser did not close cleanly: %s", describe(exc))
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None

    async def run(self, test: BrowserTest, options: RunOptions | None = None) -> RunResult:
        return await _run_test(self, test, options or RunOptions())

    async def run_many(
        self, tests: Sequence[BrowserTest], options: RunOptions, concurrency: int = 1
    ) -> list[RunResult]:
        """Run tests with at most ``concurrency`` contexts open at once; results in input order."""
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(position: int, test: BrowserTest) -> RunResult:
            async with gate:
                artifacts = options.artifacts_dir
                if artifacts is not None:
                    artifacts = artifacts / f"{position + 1:03d}-{_slug(test.name)}"
                return await self.run(test, _with(options, artifacts_dir=artifacts))

        return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(tests))))


def _with(options: RunOptions, **changes: Any) -> RunOptions:
    from dataclasses import replace

    return replace(options, **changes)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())[:50] or "test"


def _error_result(test: BrowserTest, started: datetime, began: float, error: str) -> RunResult:
    return RunResult(
        test=test.name,
        status="error",
        started_at=started.isoformat(timespec="seconds"),
        duration_ms=round((time.monotonic() - began) * 1000, 1),
        error=error,
        start_url=test.start_url,
    )


async def _run_test(session: BrowserSession, test: BrowserTest, options: RunOptions) -> RunResult:
    started, began = datetime.now(UTC), time.monotonic()
    try:
        check_modules(test, options.modules)
    except SpecError as exc:
        return _error_result(test, started, began, f"invalid modules: {exc}")
    artifacts = options.artifacts_dir or Path(tempfile.mkdtemp(prefix="bastion-run-"))
    artifacts.mkdir(parents=True, exist_ok=True)
    variables = Variables(
        test=test.variables,
        suite=options.suite_variables,
        environment=options.environment_variables,
        secrets=options.secrets,
        base_url=options.base_url,
        mail_domain=options.mail_domain,
        run_id=options.run_id,
        now=started,
    )
    record = options.record_video and session.video_available
    try:
        browser = await session.browser()
        context = await asyncio.wait_for(
            browser.new_context(
                viewport={"width": test.viewport_width, "height": test.viewport_height},
                accept_downloads=True,
                record_video_dir=str(artifacts / "video") if record else None,
                record_video_size={"width": test.viewport_width, "height": test.viewport_height}
                if record
                else None,
            ),
            CONTEXT_TIMEOUT_S,
        )
        context.set_default_timeout(test.timeout_ms)
        page = await asyncio.wait_for(context.new_page(), CONTEXT_TIMEOUT_S)
    except (PlaywrightError, TimeoutError) as exc:
        return _error_result(test, started, began, f"browser unavailable: {describe(exc)}")
    run = Run(
        test=test,
        context=context,
        page=page,
        variables=variables,
        modules=options.modules,
        artifacts=artifacts,
        base_url=options.base_url,
        files_root=options.files_root,
        screenshot_every_step=options.screenshot_every_step,
        max_dialogs_per_step=options.max_dialogs_per_step,
        deadline=began + options.max_run_s,
        on_step=options.on_step,
        mailbox=options.mailbox,
    )
    start = Step(action="goto", name="start URL", value=test.start_url) if test.start_url else None

    def crashed(_: Browser) -> None:
        run.browser_lost("the browser crashed or was closed")

    browser.on("disconnected", crashed)
    try:
        await run.run_top(start, test.steps)
        await run.finish()
    finally:
        browser.remove_listener("disconnected", crashed)
    final_url, final_shot = "", ""
    if not run.aborted and not run.page.is_closed():
        final_url = run.variables.mask(run.page.url)
        if options.final_screenshot:
            final_shot = await run.screenshot("final", mask=_visual_mask(run, test))
    video = await _close(context, page, artifacts) if record else ""
    if not record:
        await _close(context, page, artifacts)
    status: RunStatus = "failed" if run.failed else "passed"
    return RunResult(
        test=test.name,
        status=status,
        started_at=started.isoformat(timespec="seconds"),
        duration_ms=round((time.monotonic() - began) * 1000, 1),
        steps=tuple(run.results),
        error=next((s.error for s in run.results if s.status == "failed" and not s.optional), ""),
        start_url=variables.mask(test.start_url),
        final_url=final_url,
        video=video,
        final_screenshot=final_shot,
        screenshots=tuple(run.screenshots),
        variables=variables.used(),
    )


def _visual_mask(run: Run, test: BrowserTest) -> list[Any]:
    """The test's ``visual.exclude`` elements, painted over in the final screenshot so that
    the comparison with the baseline leaves them out."""
    try:
        selectors = render_selectors(test.visual.exclude, run.variables)
    except UnknownVariable as exc:
        log.info("visual.exclude not applied: %s", exc)
        return []
    return [to_locator(run.page.main_frame, selector) for selector in selectors]


async def _close(context: BrowserContext, page: Page, artifacts: Path) -> str:
    """Close the context (which finishes the video) and return the video's relative path."""
    video = page.video
    try:
        await asyncio.wait_for(context.close(), CLOSE_TIMEOUT_S)
    except (PlaywrightError, TimeoutError) as exc:
        log.warning("context did not close cleanly: %s", describe(exc))
    if video is None:
        return ""
    try:
        source = Path(await asyncio.wait_for(video.path(), CLOSE_TIMEOUT_S))
    except (PlaywrightError, TimeoutError) as exc:
        log.warning("no video: %s", describe(exc))
        return ""
    if not source.is_file() or source.stat().st_size == 0:
        return ""
    target = artifacts / "video.webm"
    shutil.move(source, target)
    if not any(source.parent.iterdir()):
        source.parent.rmdir()
    return target.name
