"""Failure notifications of browser runs: ``browser.run.failed`` through core notifications
(email, signed webhook, Slack-compatible), with a link to the run page and the failing steps.

``announce_failure`` is called by ``runs.finish_run`` inside the transaction that stores the
results, so a run that rolled back announces nothing and delivery happens after commit.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from bastion.browser.models import BrowserRun, RunStatus
from bastion.core.notifications import Message, absolute_url, notify

TOPIC = "browser.run.failed"
MAX_LISTED = 10


def _what(run: BrowserRun) -> str:
    if run.suite is not None:
        return f"suite {run.suite.name}"
    return f"test {run.test.name}" if run.test is not None else "browser run"


def _failures(run: BrowserRun) -> list[dict[str, str]]:
    failed = []
    for result in run.results:
        if not isinstance(result, dict) or result.get("status") == "passed":
            continue
        failed.append(
            {
                "test": str(result.get("slug") or result.get("test") or ""),
                "status": str(result.get("status") or ""),
                "error": str(result.get("error") or "")[:500],
            }
        )
    return failed


def run_url(run: BrowserRun) -> str:
    path = reverse(
        "web:browser-run",
        kwargs={
            "org": run.project.organization.slug,
            "project": run.project.slug,
            "run_id": run.pk,
        },
    )
    return absolute_url(path)


def message_for(run: BrowserRun) -> Message:
    failures = _failures(run)
    where = f" on {run.environment.name}" if run.environment is not None else ""
    subject = f"Browser run #{run.pk} {run.status}: {_what(run)}{where} ({run.project.name})"
    lines = [f"{len(failures)} of {len(run.results)} test(s) did not pass."]
    lines += [
        f"- {f['test']}: {f['status']} — {f['error'] or 'no reason given'}"
        for f in failures[:MAX_LISTED]
    ]
    if len(failures) > MAX_LISTED:
        lines.append(f"... and {len(failures) - MAX_LISTED} more")
    url = run_url(run)
    lines.append(f"Run: {url}")
    data: dict[str, Any] = {
        "run_id": run.pk,
        "status": str(run.status),
        "project": run.project.slug,
        "suite": run.suite.slug if run.suite else "",
        "test": run.test.slug if run.test else "",
        "environment": run.environment.slug if run.environment else "",
        "failures": failures[:MAX_LISTED],
        "tests": len(run.results),
    }
    return Message(topic=TOPIC, subject=subject, text="\n".join(lines), url=url, data=data)


def announce_failure(run: BrowserRun) -> None:
    """Tell the subscribed channels that ``run`` failed or errored (call inside its transaction)."""
    if run.status not in (RunStatus.FAILED, RunStatus.ERROR):
        return
    notify(
        run.project.organization,
        message_for(run),
        project=run.project,
        dedupe_key=f"browser:run:{run.pk}:failed",
    )
