"""What the build page shows of a verification step: a link to the scan, run or deploy, live
progress while it runs, and its figures (findings by severity, tests passed and failed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse

from bastion.jobs.models import JobState
from bastion.pipelines.models import Build, StepVerification
from bastion.pipelines.verification_reports import SEVERITY_ORDER
from bastion.scanning.models import ScanState
from bastion.scanning.progress import progress_of
from bastion.scanning.templatetags.scanning_ui import SEVERITY_TONES


@dataclass
class Card:
    kind: str
    title: str
    url: str = ""
    outcome: str = ""
    percent: int | None = None  # while a scan runs
    progress: str = ""
    # (label, count, tone) figures: findings by severity, or passed / failed tests.
    figures: list[tuple[str, int, str]] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)


def _unclaimed(found: StepVerification) -> bool:
    job = found.scan.job if found.scan is not None else None
    return job is None or job.state == JobState.SCHEDULED


def _scan_card(found: StepVerification, org: str) -> Card:
    summary = found.summary
    card = Card("scan", f"{summary.get('profile', '')} scan of {summary.get('target', '')}")
    scan = found.scan
    if scan is None:
        return card
    card.url = reverse("web:scan", kwargs={"org": org, "scan_id": scan.pk})
    if scan.state in (ScanState.QUEUED, ScanState.RUNNING):
        live = progress_of(scan)
        card.percent = live.percent
        card.progress = (
            f"checks {live.checks_done}/{live.checks_total} · {live.requests_sent} requests · "
            f"{live.findings} findings so far"
            if live.checks_total
            else ("waiting for an agent" if _unclaimed(found) else "starting")
        )
    counts = summary.get("findings") or {}
    card.figures = [
        (label, int(counts[label]), SEVERITY_TONES[label])
        for label in SEVERITY_ORDER
        if counts.get(label)
    ]
    card.reports = list(summary.get("reports") or [])
    card.outcome = found.outcome
    if summary.get("fail_on"):
        card.title += f" · fails on {summary['fail_on']}"
    return card


def _browser_card(found: StepVerification, org: str) -> Card:
    summary = found.summary
    what = f"suite {summary['suite']}" if summary.get("suite") else f"test {summary.get('test')}"
    where = f" on {summary['environment']}" if summary.get("environment") else ""
    card = Card("browser", f"browser {what}{where}", outcome=found.outcome)
    run = found.browser_run
    if run is not None:
        card.url = reverse(
            "web:browser-run",
            kwargs={"org": org, "project": summary.get("project", ""), "run_id": run.pk},
        )
    if "tests" in summary:
        passed, failed = int(summary.get("passed", 0)), int(summary.get("failed", 0))
        card.figures = [
            ("passed", passed, "green" if passed else "grey"),
            ("failed", failed, "red" if failed else "grey"),
        ]
        card.reports = ["junit.xml"]
    return card


def _release_card(found: StepVerification, org: str) -> Card:
    summary = found.summary
    card = Card("release", f"release {summary.get('release', '')} to {summary.get('environment')}")
    if found.deploy is not None:
        card.url = reverse(
            "errors:issues", kwargs={"org": org, "project": summary.get("project", "")}
        )
        card.outcome = f"deploy recorded for {summary.get('project')}"
    return card


BUILDERS = {"scan": _scan_card, "browser": _browser_card, "release": _release_card}


def cards_for(build: Build) -> dict[int, Card]:
    """The cards of a build's verification steps, by step id (one query, plus live progress)."""
    found = StepVerification.objects.filter(step__build=build).select_related(
        "scan__job", "browser_run", "deploy"
    )
    org = build.organization.slug
    return {v.step_id: BUILDERS[v.kind](v, org) for v in found if v.kind in BUILDERS}
