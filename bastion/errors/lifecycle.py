"""What a new event does to its issue's status (pure functions, run on the locked issue row in
the ingest batch, so they must stay cheap).

- Resolved (``resolution=now``): any new event is a regression: reopened, marked regressed.
- Resolved in next release (``resolution=next_release``): only an event of a release the issue
  had not seen when it was resolved is a regression; events of known releases (the old code
  still deployed somewhere), of releases deployed before the resolution (``Deploy`` rows, e.g.
  from a pipeline's ``release:`` step) or without a release leave it resolved.
- Ignored: forever, or until a date, until the issue reaches N more events or N more users
  (stored as absolute thresholds); past the condition it is unresolved again (not a regression).
- A suppressed event (matched an ignore rule) is counted but changes no status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bastion.errors.models import Deploy, Issue, IssueStatus, Resolution

Change = Callable[[Issue], None]


@dataclass(frozen=True)
class Transition:
    issue_id: int
    project_id: int
    action: str  # "errors.issue.regressed" or "errors.issue.unignored"
    reason: str


def clear_lifecycle(issue: Issue) -> None:
    """Forget how the issue was resolved or ignored (on any status change)."""
    issue.resolution = Resolution.NONE
    issue.ignore_until = None
    issue.ignore_until_events = None
    issue.ignore_until_users = None


def is_regression(issue: Issue, release: str) -> bool:
    """Whether an event of ``release`` reopens this resolved issue (before it is applied)."""
    if issue.status != IssueStatus.RESOLVED:
        return False
    if issue.resolution == Resolution.NEXT_RELEASE:
        return bool(release) and release not in issue.releases and not _old(issue, release)
    return True


def _old(issue: Issue, release: str) -> bool:
    """A release deployed before the issue was resolved is old code, not the next release
    (one indexed query, only for an event of a release the issue has not seen)."""
    if issue.status_changed_at is None:
        return False
    return Deploy.objects.filter(
        project_id=issue.project_id, release=release, deployed_at__lt=issue.status_changed_at
    ).exists()


def ignore_expired(issue: Issue, now: datetime) -> str:
    """Why this ignored issue is no longer ignored (after the event is counted), or ''."""
    if issue.status != IssueStatus.IGNORED:
        return ""
    if issue.ignore_until is not None and now >= issue.ignore_until:
        return "date passed"
    if issue.ignore_until_events is not None and issue.event_count >= issue.ignore_until_events:
        return "event count reached"
    if issue.ignore_until_users is not None and issue.users_affected >= issue.ignore_until_users:
        return "user count reached"
    return ""


def before_event(issue: Issue, release: str, now: datetime) -> Transition | None:
    """Called before the event is counted: a regression reopens the issue."""
    if not is_regression(issue, release):
        return None
    clear_lifecycle(issue)
    issue.status = IssueStatus.UNRESOLVED
    issue.status_changed_at = now
    issue.regressed = True
    issue.regressed_at = now
    reason = f"new event in release {release}" if release else "new event"
    return Transition(issue.pk, issue.project_id, "errors.issue.regressed", reason)


def after_event(issue: Issue, now: datetime) -> Transition | None:
    """Called after the event is counted: an expired ignore reopens the issue."""
    reason = ignore_expired(issue, now)
    if not reason:
        return None
    clear_lifecycle(issue)
    issue.status = IssueStatus.UNRESOLVED
    issue.status_changed_at = now
    return Transition(issue.pk, issue.project_id, "errors.issue.unignored", reason)
