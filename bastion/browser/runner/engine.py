"""One run of one test in a fresh browser context: the step loop, its events and its faults."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import BrowserContext, Dialog, Download, Frame, Page, Request, Response
from playwright.async_api import Error as PlaywrightError

from bastion.browser.runner.errors import ExitTest, RunAborted, StepFailure, describe
from bastion.browser.runner.results import NamedScreenshot, StepResult, StepStatus
from bastion.browser.spec.model import BrowserTest, Step
from bastion.browser.spec.modules import ModuleResolver
from bastion.browser.spec.variables import UnknownVariable, Variables

if TYPE_CHECKING:
    from bastion.browser.runner.mailbox import Email, Mailbox

log = logging.getLogger(__name__)
# Grace on top of a step's own timeout before the step is declared hung.
HANG_GRACE_S = 5.0
SCREENSHOT_TIMEOUT_MS = 3_000
MAX_EVENTS_PER_STEP = 50
# After these actions a download or pop-up may still be on its way when the step returns.
SETTLE_AFTER = frozenset({"click", "double_click", "press"})
SETTLE_S = 0.3
DOWNLOAD_SAVE_S = 30.0
EXPECTED_DOWNLOAD_S = 5.0


@dataclass
class StepEvents:
    """What the page did while one step ran."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    fatal: str = ""

    def absorb(self, earlier: StepEvents) -> None:
        for mine, theirs in (
            (self.console_errors, earlier.console_errors),
            (self.failed_requests, earlier.failed_requests),
            (self.dialogs, earlier.dialogs),
            (self.faults, earlier.faults),
        ):
            mine[:0] = theirs
        self.fatal = self.fatal or earlier.fatal

    def add(self, bucket: list[str], text: str) -> None:
        if len(bucket) < MAX_EVENTS_PER_STEP:
            bucket.append(text[:500])


class _StopRun(Exception):
    pass


@dataclass(frozen=True)
class _Attempt:
    """How performing one step went."""

    condition: bool | None = None
    error: str = ""
    selector: str = ""
    note: str = ""
    # A step inside this block failed and stopped the run.
    inner_stop: bool = False


class Run:
    """The mutable state of a run; ``actions.perform`` drives the page through it."""

    def __init__(
        self,
        *,
        test: BrowserTest,
        context: BrowserContext,
        page: Page,
        variables: Variables,
        modules: ModuleResolver,
        artifacts: Path,
        base_url: str,
        files_root: Path,
        screenshot_every_step: bool,
        max_dialogs_per_step: int,
        deadline: float,
        on_step: Callable[[StepResult], None] | None,
        mailbox: Mailbox | None = None,
    ) -> None:
        self.test = test
        self.context = context
        self.page = page
        self.frame: Frame = page.main_frame
        self.variables = variables
        self.modules = modules
        self.artifacts = artifacts
        self.base_url = base_url
        self.files_root = files_root
        self.screenshot_every_step = screenshot_every_step
        self.max_dialogs = max_dialogs_per_step
        self.deadline = deadline
        self.on_step = on_step
        self.mailbox = mailbox
        self.email: Email | None = None
        self.started_epoch = time.time()
        self.results: list[StepResult] = []
        self.screenshots: list[NamedScreenshot] = []
        self.events = StepEvents()
        self.dialog_policy: tuple[str, str | None] = ("dismiss", None)
        self.last_dialog = ""
        self.failed = False
        self.aborted = ""
        self._shots = 0
        self._last_action = ""
        self.expected_popups = 0
        self.expected_downloads = 0
        self._saving: list[asyncio.Future[None]] = []
        self._module_chain: list[str] = []
        self._watch_page(page)
        context.on("page", self._on_new_page)

    # -- page events ------------------------------------------------------------------------
    def _watch_page(self, page: Page) -> None:
        page.on("console", lambda msg: self._on_console(msg.type, msg.text))
        page.on(
            "pageerror", lambda exc: self.events.add(self.events.console_errors, f"uncaught: {exc}")
        )
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)
        page.on("dialog", self._on_dialog)
        page.on("download", self._on_download)
        page.on("crash", lambda _: self._fatal("the page crashed"))

    def _on_console(self, kind: str, text: str) -> None:
        if kind == "error":
            self.events.add(self.events.console_errors, self.variables.mask(text))

    def _on_request_failed(self, request: Request) -> None:
        reason = request.failure or "failed"
        text = f"{request.method} {request.url}: {reason}"
        self.events.add(self.events.failed_requests, self.variables.mask(text))

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            text = f"{response.status} {response.request.method} {response.url}"
            self.events.add(self.events.failed_requests, self.variables.mask(text))

    async def _on_dialog(self, dialog: Dialog) -> None:
        events = self.events
        message = self.variables.mask(dialog.message)
        self.last_dialog = dialog.message
        events.add(events.dialogs, f"{dialog.type}: {message}")
        try:
            if len(events.dialogs) > self.max_dialogs:
                await dialog.dismiss()
                self._fatal(f"endless dialogs: more than {self.max_dialogs} in one step")
                await dialog.page.close(run_before_unload=False) if dialog.page else None
                return
            action, text = self.dialog_policy
            if action == "accept":
                await (dialog.accept(text) if text is not None else dialog.accept())
            else:
                await dialog.dismiss()
        except PlaywrightError as exc:
            log.debug("dialog already handled: %s", exc)

    async def _on_download(self, download: Download) -> None:
        name = download.suggested_filename
        if self.expected_downloads > 0:
            self.expected_downloads -= 1
            target = self.artifacts / "downloads" / Path(name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            saving = asyncio.ensure_future(download.save_as(target))
            self._saving.append(saving)
            try:
                await saving
            except PlaywrightError as exc:
                self.events.add(self.events.faults, f"download {name!r} failed: {exc}")
            return
        self.events.add(self.events.faults, f"unexpected download: {name!r}")
        try:
            await download.cancel()
        except PlaywrightError as exc:
            log.debug("cancel download: %s", exc)

    async def _on_new_page(self, page: Page) -> None:
        self._watch_page(page)
        if self.expected_popups > 0:
            self.expected_popups -= 1
            return
        self.events.add(self.events.faults, f"unexpected pop-up: {page.url or 'a new page'}")
        try:
            await page.close()
        except PlaywrightError as exc:
            log.debug("close pop-up: %s", exc)

    def browser_lost(self, reason: str) -> None:
        self._fatal(reason)
        self.aborted = self.aborted or reason

    def _fatal(self, reason: str) -> None:
        if not self.events.fatal:
            self.events.fatal = reason

    # -- artifacts --------------------------------------------------------------------------
    async def screenshot(
        self, label: str, element: Any = None, mask: list[Any] | None = None
    ) -> str:
        """Save a PNG, return its path relative to the artifact folder ("" if impossible)."""
        self._shots += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:60]
        relative = f"screenshots/{self._shots:03d}-{safe}.png"
        path = self.artifacts / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {
            "path": str(path),
            "timeout": SCREENSHOT_TIMEOUT_MS,
            "animations": "disabled",
            "caret": "hide",
        }
        if mask:
            options["mask"] = mask
            options["mask_color"] = "#FF00FF"
        try:
            target = element if element is not None else self.page
            await asyncio.wait_for(target.screenshot(**options), SCREENSHOT_TIMEOUT_MS / 1000 + 2)
        except (PlaywrightError, TimeoutError) as exc:
            log.info("screenshot %s not taken: %s", label, describe(exc))
            return ""
        return relative

    # -- the step loop ----------------------------------------------------------------------
    async def run_top(self, start: Step | None, steps: tuple[Step, ...]) -> None:
        """Open the start URL (step "0"), then run the steps; a failure skips the rest."""
        try:
            if start is not None:
                try:
                    await self.run_step(start, "0")
                except _StopRun:
                    note = "not run: the start URL did not load"
                    for position, rest in enumerate(steps, start=1):
                        self._record(
                            StepResult(f"{position}", rest.action, rest.name, "skipped", note=note)
                        )
                    return
            await self.run_steps(steps, "")
        except _StopRun:
            pass
        except ExitTest as exit_:
            if not exit_.passing:
                self.failed = True

    async def finish(self) -> None:
        """Give a download or pop-up started by the last click a moment to show, and fail the
        run on faults that happened after the last step ended."""
        if self._last_action in SETTLE_AFTER and not self.aborted:
            await asyncio.sleep(SETTLE_S)
        waiting_until = time.monotonic() + EXPECTED_DOWNLOAD_S
        while self.expected_downloads > 0 and time.monotonic() < waiting_until and not self.aborted:
            await asyncio.sleep(0.05)  # an allowed download that has not started yet
        if self._saving:
            # Downloads the test expected are written before the context closes.
            await asyncio.wait(self._saving, timeout=DOWNLOAD_SAVE_S)
        late = self.events
        if late.faults or late.fatal:
            error = late.fatal or "; ".join(late.faults)
            self.failed = True
            self._record(
                StepResult(
                    "end",
                    "finish",
                    "after the last step",
                    "failed",
                    error=self.variables.mask(error),
                )
            )

    async def run_steps(self, steps: tuple[Step, ...], prefix: str) -> None:
        for position, step in enumerate(steps, start=1):
            index = f"{prefix}{position}"
            try:
                await self.run_step(step, index)
            except (_StopRun, ExitTest):
                if not prefix:
                    note = (
                        "not run: the test exited"
                        if not self.failed
                        else "not run: an earlier step failed"
                    )
                    for later, rest in enumerate(steps[position:], start=position + 1):
                        self._record(
                            StepResult(f"{later}", rest.action, rest.name, "skipped", note=note)
                        )
                raise

    def _record(self, result: StepResult, at: int | None = None) -> None:
        if at is None:
            self.results.append(result)
        else:
            self.results.insert(at, result)
        if self.on_step is not None:
            self.on_step(result)

    async def run_step(self, step: Step, index: str) -> None:
        """Run one step (and, for blocks, its children); record its result; raise _StopRun
        when the run cannot go on."""
        module = self._module_chain[-1] if self._module_chain else ""
        if self._skipped_or_stopped(step, index, module):
            return
        # What the page did since the previous step ended counts against this step.
        events = StepEvents()
        events.absorb(self.events)
        self.events = events
        # A step may open one tab / start one download; it may arrive after the step ends.
        if step.opens_tab:
            self.expected_popups = 1
        if step.allow_download:
            self.expected_downloads = 1
        started, position = time.monotonic(), len(self.results)
        try:
            attempt = await self._attempt(step, index)
        except ExitTest as exit_:
            verdict = "passing" if exit_.passing else "failing"
            note = f"test exited {verdict}"
            self._record(
                StepResult(index, step.action, step.name, "passed", note=note, module=module)
            )
            raise
        error = attempt.error
        if events.fatal:
            self.aborted = events.fatal
            error = events.fatal
        if events.faults and not error:
            error = "; ".join(events.faults)
        status: StepStatus = "failed" if error else "passed"
        note = attempt.note
        if attempt.condition is False:
            status, note = "skipped", note or "condition was false"
        wants_shot = status == "failed" or (
            status == "passed" and (step.screenshot or self.screenshot_every_step)
        )
        shot = await self.screenshot(f"step-{index}") if wants_shot and not self.aborted else ""
        result = StepResult(
            index=index,
            action=step.action,
            name=step.name,
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            error=self.variables.mask(error),
            optional=step.optional,
            soft=step.soft,
            selector_used=self.variables.mask(attempt.selector),
            screenshot=shot,
            console_errors=tuple(events.console_errors),
            failed_requests=tuple(events.failed_requests),
            dialogs=tuple(events.dialogs),
            module=module,
            condition=attempt.condition,
            note=self.variables.mask(note),
        )
        self._record(result, at=position if step.action in _NESTING else None)
        self.events = StepEvents()
        self._last_action = step.action
        if attempt.inner_stop:
            raise _StopRun
        if status == "failed" and (self.aborted or not step.optional):
            self.failed = True
            if self.aborted or not step.soft:
                raise _StopRun

    def _skipped_or_stopped(self, step: Step, index: str, module: str) -> bool:
        """Record a disabled step (True); fail and stop if the run is aborted or out of time."""
        if step.disabled:
            self._record(
                StepResult(index, step.action, step.name, "skipped", note="disabled", module=module)
            )
            return True
        if self.aborted or time.monotonic() > self.deadline:
            reason = self.aborted or "the run went over its time limit"
            self.failed = True
            self._record(
                StepResult(index, step.action, step.name, "failed", error=reason, module=module)
            )
            raise _StopRun
        return False

    async def _attempt(self, step: Step, index: str) -> _Attempt:
        """Evaluate the step's condition and perform it within its time budget."""
        from bastion.browser.runner import actions

        timeout_ms = step.timeout_ms or self.test.timeout_ms
        condition: bool | None = None
        over_time = False
        try:
            if step.when:
                condition = await asyncio.wait_for(
                    actions.truthy(self, step.when), timeout_ms / 1000 + HANG_GRACE_S
                )
            if condition is False:
                return _Attempt(condition=False)
            budget = _step_budget(step, timeout_ms)
            remaining = max(self.deadline - time.monotonic(), 0.05)
            if budget is not None and remaining < budget:
                budget, over_time = remaining, True
            outcome = await asyncio.wait_for(actions.perform(self, step, index, timeout_ms), budget)
            return _Attempt(condition=condition, selector=outcome.selector, note=outcome.note)
        except _StopRun:
            return _Attempt(condition=condition, error="a step inside failed", inner_stop=True)
        except TimeoutError:
            if over_time:
                error = "the run went over its time limit"
            else:
                error = (
                    f"step did not finish within {timeout_ms / 1000 + HANG_GRACE_S:.0f} s: "
                    "the page is not responding"
                )
            self._fatal(error)
            return _Attempt(condition=condition, error=error)
        except (StepFailure, PlaywrightError, UnknownVariable) as exc:
            error = describe(exc)
            if isinstance(exc, RunAborted):
                self._fatal(error)
            return _Attempt(condition=condition, error=error)

    async def run_module(self, step: Step, index: str) -> None:
        module = self.modules(step.module)
        for name, value in step.params.items():
            self.variables.set(name, self.variables.render(value))
        for name, value in module.variables.items():
            if not self.variables.has(name):
                self.variables.set(name, self.variables.render(value))
        self._module_chain.append(step.module)
        try:
            await self.run_steps(module.steps, f"{index}.")
        finally:
            self._module_chain.pop()


_NESTING = frozenset({"if", "while", "repeat", "for_each", "module"})


def _step_budget(step: Step, timeout_ms: int) -> float | None:
    """Wall-clock cap for one step: its timeout plus grace; blocks are capped per child step."""
    if step.action in _NESTING:
        return None
    if step.action == "wait":
        return step.ms / 1000 + HANG_GRACE_S
    return timeout_ms / 1000 + HANG_GRACE_S
