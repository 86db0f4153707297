"""Email steps: wait for a message to an address, assert its subject/body, extract a link or a code.

The runner reads mail through a ``Mailbox``: a plain function ``(address, since) -> [Email]``
(newest first) called in a worker thread. On the server it reads the SMTP sink's table
(``bastion.browser.mail.sink.read_mailbox``); on an agent it asks the server with the job's
token (``bastion.browser.runner.job_mailbox.JobMailbox``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.browser.runner.errors import StepFailure
from bastion.browser.runner.step_helpers import Outcome, step_value
from bastion.browser.spec.model import Step

if TYPE_CHECKING:
    from bastion.browser.runner.engine import Run

POLL_S = 0.25
# Slack for the clock of whatever stored the message (a separate process or host).
SINCE_SLACK_S = 2.0
EMAIL_FIELDS = ("subject", "body", "from", "to")
STORE_FIELDS = ("link", "code", "subject", "body")
DEFAULT_CODE = r"\b(\d{4,8})\b"
LINK = re.compile(r"""https?://[^\s"'<>]+""")


@dataclass(frozen=True)
class Email:
    to: str
    mail_from: str
    subject: str
    text: str
    html: str
    received_at: float

    @property
    def body(self) -> str:
        return self.text or re.sub(r"<[^>]+>", " ", self.html)


Mailbox = Callable[[str, float], list[Email]]


def _field(email: Email, name: str) -> str:
    return {
        "subject": email.subject,
        "body": email.body,
        "from": email.mail_from,
        "to": email.to,
    }[name]


async def do_wait_for_email(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    if run.mailbox is None:
        raise StepFailure("no mailbox is available to this run")
    address = step_value(run, step).strip().lower()
    since = run.started_epoch - SINCE_SLACK_S
    end = time.monotonic() + timeout_ms / 1000
    while True:
        messages = await asyncio.to_thread(run.mailbox, address, since)
        if messages:
            run.email = messages[0]
            return Outcome(note=f"{messages[0].subject!r} from {messages[0].mail_from}")
        if time.monotonic() >= end:
            # A mailbox that reads over the network says why it saw nothing (JobMailbox).
            last = str(getattr(run.mailbox, "last_error", "") or "")
            why = f" (last error: {last})" if last else ""
            raise StepFailure(f"no email to {address} within {timeout_ms} ms{why}")
        await asyncio.sleep(POLL_S)


def _current(run: Run) -> Email:
    if run.email is None:
        raise StepFailure("no email yet: add a wait_for_email step first")
    return run.email


def _matches(actual: str, expected: str, mode: str) -> bool:
    if mode == "regex":
        return re.search(expected, actual) is not None
    if mode in ("contains", "not_contains"):
        return (expected in actual) == (mode == "contains")
    return (actual.strip() == expected) == (mode == "equals")


async def do_assert_email(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    email = _current(run)
    field = step.attribute or "subject"
    if field not in EMAIL_FIELDS:
        raise StepFailure(f"assert_email checks one of {', '.join(EMAIL_FIELDS)}, not {field!r}")
    expected = step_value(run, step)
    actual = _field(email, field)
    if not _matches(actual, expected, step.match):
        shown = actual if len(actual) <= 200 else actual[:200] + "..."
        raise StepFailure(f"email {field} is {shown!r}; expected it to {step.match} {expected!r}")
    return Outcome()


def _extract(email: Email, what: str, pattern: str) -> str:
    """A link (the first, or the first matching ``pattern``), a code (``pattern``'s first
    group, default 4-8 digits), or the subject/body (whole, or ``pattern``'s first group)."""
    if what == "link":
        links = LINK.findall(email.text + "\n" + email.html)
        return next((link for link in links if not pattern or re.search(pattern, link)), "")
    if what in ("subject", "body") and not pattern:
        return _field(email, what)
    source = email.body if what in ("code", "body") else email.subject
    found = re.search(pattern or DEFAULT_CODE, source)
    if found is None:
        return ""
    return found.group(1) if found.groups() else found.group(0)


async def do_store_email(run: Run, step: Step, index: str, timeout_ms: int) -> Outcome:
    email = _current(run)
    what = step.attribute or "link"
    if what not in STORE_FIELDS:
        raise StepFailure(f"store_email extracts one of {', '.join(STORE_FIELDS)}, not {what!r}")
    pattern = run.variables.render(step.value or "")
    try:
        value = _extract(email, what, pattern)
    except re.error as exc:
        raise StepFailure(f"invalid regular expression {pattern!r}: {exc}") from exc
    if not value:
        raise StepFailure(f"no {what} in the email{f' matching {pattern!r}' if pattern else ''}")
    run.variables.set(step.variable, value)
    return Outcome(note=f"{step.variable} set")
