"""Review coverage of a project over a period: the evidence an auditor asks for.

For each issue that was new (first seen) or regressed in the period: who opened it and who
marked it reviewed, and how long after it appeared (first seen, or the regression) the first
review came; issues with no review since they appeared are "never reviewed". Three queries
whatever the number of issues (issues, views, reviews).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from bastion.core.models import Project
from bastion.errors.models import Issue, IssueReview, IssueView

MAX_PERIOD_DAYS = 366
MAX_ISSUES = 5000


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        tz = timezone.get_current_timezone()
        start = datetime.combine(self.start, time.min, tzinfo=tz)
        return start, datetime.combine(self.end, time.min, tzinfo=tz) + timedelta(days=1)


def parse_period(start: str, end: str, today: date | None = None) -> Period:
    """The period from two ISO dates (both optional: the last 7 days); bad input is corrected
    to the default rather than refused, since it only selects what to show."""
    today = today or timezone.localdate()
    try:
        last = date.fromisoformat(end) if end else today
    except ValueError:
        last = today
    try:
        first = date.fromisoformat(start) if start else last - timedelta(days=6)
    except ValueError:
        first = last - timedelta(days=6)
    if first > last:
        first, last = last, first
    if (last - first).days >= MAX_PERIOD_DAYS:
        first = last - timedelta(days=MAX_PERIOD_DAYS - 1)
    return Period(first, last)


@dataclass(frozen=True)
class Seen:
    user: str
    at: datetime
    comment: str = ""


@dataclass(frozen=True)
class CoverageRow:
    issue_id: int
    title: str
    status: str
    kind: str  # "new" or "regressed"
    appeared_at: datetime
    event_count: int
    viewers: list[Seen]
    reviews: list[Seen]
    first_review_after_seconds: int | None
    assignee: str = ""  # who looks after the issue now (empty: nobody)

    @property
    def reviewed(self) -> bool:
        return self.first_review_after_seconds is not None


@dataclass(frozen=True)
class Coverage:
    project: Project
    period: Period
    rows: list[CoverageRow]

    @property
    def never_reviewed(self) -> list[CoverageRow]:
        return [row for row in self.rows if not row.reviewed]

    @property
    def reviewed_count(self) -> int:
        return len(self.rows) - len(self.never_reviewed)


def _first_by_user(entries: list[tuple[str, datetime, str]]) -> list[Seen]:
    first: dict[str, Seen] = {}
    for user, at, comment in sorted(entries, key=lambda e: e[1]):
        first.setdefault(user, Seen(user, at, comment))
    return list(first.values())


def review_coverage(project: Project, period: Period) -> Coverage:
    """Coverage of a project the caller already obtained through a scoped helper."""
    start, end = period.bounds
    issues = list(
        Issue.objects.filter(project=project)
        .filter(
            Q(first_seen__gte=start, first_seen__lt=end)
            | Q(regressed_at__gte=start, regressed_at__lt=end)
        )
        .select_related("assignee")
        .order_by("first_seen", "pk")[:MAX_ISSUES]
    )
    ids = [issue.pk for issue in issues]
    views: dict[int, list[tuple[str, datetime, str]]] = {}
    for issue_id, username, at in IssueView.objects.filter(issue_id__in=ids).values_list(
        "issue_id", "user__username", "viewed_at"
    ):
        views.setdefault(issue_id, []).append((username, at, ""))
    reviews: dict[int, list[tuple[str, datetime, str]]] = {}
    for issue_id, username, at, comment in IssueReview.objects.filter(issue_id__in=ids).values_list(
        "issue_id", "user__username", "reviewed_at", "comment"
    ):
        reviews.setdefault(issue_id, []).append((username or "(deleted user)", at, comment))
    rows = []
    for issue in issues:
        is_new = start <= issue.first_seen < end
        appeared = issue.first_seen if is_new or issue.regressed_at is None else issue.regressed_at
        # A review before a regression reviewed the old occurrence, not this one.
        since = [r for r in reviews.get(issue.pk, []) if r[1] >= appeared]
        first_review = min((r[1] for r in since), default=None)
        rows.append(
            CoverageRow(
                issue_id=issue.pk,
                title=issue.title,
                status=issue.status,
                kind="new" if is_new else "regressed",
                appeared_at=appeared,
                event_count=issue.event_count,
                viewers=_first_by_user(views.get(issue.pk, [])),
                reviews=_first_by_user(since),
                first_review_after_seconds=(
                    int((first_review - appeared).total_seconds()) if first_review else None
                ),
                assignee=issue.assignee.username if issue.assignee else "",
            )
        )
    return Coverage(project, period, rows)


def as_json(coverage: Coverage) -> dict[str, Any]:
    def row(r: CoverageRow) -> dict[str, Any]:
        data = asdict(r)
        data["appeared_at"] = r.appeared_at.isoformat()
        data["reviewed"] = r.reviewed
        for key in ("viewers", "reviews"):
            data[key] = [{**s, "at": s["at"].isoformat()} for s in data[key]]
        return data

    return {
        "project": f"{coverage.project.organization.slug}/{coverage.project.slug}",
        "period": {
            "start": coverage.period.start.isoformat(),
            "end": coverage.period.end.isoformat(),
        },
        "issues": len(coverage.rows),
        "reviewed": coverage.reviewed_count,
        "never_reviewed": [r.issue_id for r in coverage.never_reviewed],
        "rows": [row(r) for r in coverage.rows],
    }


CSV_COLUMNS = [
    "issue_id",
    "title",
    "kind",
    "status",
    "appeared_at",
    "events",
    "viewed_by",
    "reviewed_by",
    "first_review_after_seconds",
    "reviewed",
    "assignee",
]


def _safe_cell(value: str) -> str:
    """No formula injection when the CSV is opened in a spreadsheet."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def as_csv(coverage: Coverage) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in coverage.rows:
        writer.writerow(
            [
                r.issue_id,
                _safe_cell(r.title),
                r.kind,
                r.status,
                r.appeared_at.isoformat(),
                r.event_count,
                _safe_cell("; ".join(f"{s.user} {s.at.isoformat()}" for s in r.viewers)),
                _safe_cell("; ".join(f"{s.user} {s.at.isoformat()}" for s in r.reviews)),
                "" if r.first_review_after_seconds is None else r.first_review_after_seconds,
                "yes" if r.reviewed else "no",
                _safe_cell(r.assignee),
            ]
        )
    return out.getvalue()
