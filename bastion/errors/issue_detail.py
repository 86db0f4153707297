"""What the issue page shows beyond the issue row: the chosen event and its neighbours, stack
frames with source context, tag-value distributions and the events-over-time chart.

Each read is one indexed query: neighbours walk ``event_by_issue`` (issue, -received_at), the
chart groups the issue's recent events by hour or day, and the tag distributions read the
counters the ingest batch keeps (``IssueTagValue``) instead of aggregating over events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from bastion.errors.models import Event, Issue, IssueTagValue

FIRST_KEYS = ("environment", "release", "level")
TOP_VALUES = 5
MAX_TAG_ROWS = 3000
CHART_WIDTH, CHART_HEIGHT = 720, 120


# --- events and navigation ------------------------------------------------------------------


@dataclass(frozen=True)
class Navigation:
    first: Event | None
    older: Event | None
    newer: Event | None
    latest: Event | None


def chosen_event(events: QuerySet[Event], wanted: str) -> Event | None:
    """The event named by ``?event=<id>`` (hex or dashed), else the latest."""
    if wanted:
        try:
            event_id = uuid.UUID(wanted[:40])
        except ValueError:
            event_id = None
        found = events.filter(event_id=event_id).first() if event_id else None
        if found is not None:
            return found
    return events.first()


def navigation(events: QuerySet[Event], current: Event) -> Navigation:
    at = current.received_at
    older = Q(received_at__lt=at) | Q(received_at=at, pk__lt=current.pk)
    newer = Q(received_at__gt=at) | Q(received_at=at, pk__gt=current.pk)
    previous = events.filter(older).order_by("-received_at", "-pk").first()
    following = events.filter(newer).order_by("received_at", "pk").first()
    return Navigation(
        first=events.order_by("received_at", "pk").first() if previous else None,
        older=previous,
        newer=following,
        latest=events.order_by("-received_at", "-pk").first() if following else None,
    )


# --- stack frames ----------------------------------------------------------------------------


def pairs(value: Any) -> list[tuple[str, Any]]:
    """A mapping's items for a template (where ``d.items`` would look up a key "items")."""
    return [(str(k), v) for k, v in value.items()] if isinstance(value, dict) else []


def sections(data: dict[str, Any]) -> dict[str, Any]:
    """The event's user, tags, request headers and contexts as lists of pairs."""
    request = data.get("request")
    request = request if isinstance(request, dict) else {}
    return {
        "user": pairs(data.get("user")),
        "tags": pairs(data.get("tags")),
        "headers": pairs(request.get("headers")),
        "contexts": [
            (name, pairs(ctx) if isinstance(ctx, dict) else [("value", ctx)])
            for name, ctx in pairs(data.get("contexts"))
        ],
    }


def _context(frame: dict[str, Any]) -> list[tuple[int | str, str, bool]]:
    """(line number, source, is the frame's line) around the frame's line."""
    lineno = frame.get("lineno") if isinstance(frame.get("lineno"), int) else None
    pre = [str(x) for x in frame.get("pre_context") or [] if isinstance(x, str)]
    post = [str(x) for x in frame.get("post_context") or [] if isinstance(x, str)]
    line = frame.get("context_line")
    if not isinstance(line, str):
        return []
    start = lineno - len(pre) if lineno is not None else None
    lines = [*pre, line, *post]
    return [
        (start + i if start is not None else "", text, i == len(pre))
        for i, text in enumerate(lines)
    ]


def frames(exception: dict[str, Any]) -> list[dict[str, Any]]:
    """Frames innermost first (as people read a trace), with source context."""
    raw = (exception.get("stacktrace") or {}).get("frames") or []
    return [
        {
            "where": frame.get("module") or frame.get("filename") or frame.get("abs_path") or "?",
            "path": frame.get("abs_path") or frame.get("filename") or "",
            "function": frame.get("function") or "?",
            "lineno": frame.get("lineno") or "",
            "context": _context(frame),
            "vars": pairs(frame.get("vars")),
            "in_app": bool(frame.get("in_app")),
        }
        for frame in reversed(raw)
        if isinstance(frame, dict)
    ]


def exceptions(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The raised exception first, its causes after."""
    return [
        {**exc, "frames": frames(exc)}
        for exc in reversed(data.get("exception") or [])
        if isinstance(exc, dict)
    ]


# --- tag distributions -------------------------------------------------------------------------


@dataclass(frozen=True)
class TagShare:
    value: str
    count: int
    percent: float


@dataclass(frozen=True)
class TagDistribution:
    key: str
    total: int
    top: list[TagShare]
    others: int


def tag_distributions(issue: Issue) -> list[TagDistribution]:
    """Per tag key, its most frequent values with their share of the issue's tagged events."""
    rows = (
        IssueTagValue.objects.filter(issue=issue)
        .order_by("key", "-count", "value")
        .values_list("key", "value", "count")[:MAX_TAG_ROWS]
    )
    by_key: dict[str, list[tuple[str, int]]] = {}
    for key, value, count in rows:
        by_key.setdefault(key, []).append((value, count))
    result = []
    for key, values in by_key.items():
        total = sum(count for _, count in values)
        top = [
            TagShare(value, count, round(100 * count / total, 1))
            for value, count in values[:TOP_VALUES]
        ]
        result.append(TagDistribution(key, total, top, total - sum(t.count for t in top)))
    order = {key: index for index, key in enumerate(FIRST_KEYS)}
    return sorted(result, key=lambda d: (order.get(d.key, len(order)), d.key))


# --- events over time --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    start: datetime
    count: int


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    peak: int
    unit: str  # "hour" or "day"
    since: datetime
    until: datetime
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def events_chart(issue: Issue, now: datetime | None = None) -> Chart:
    """Events per hour over the last 48 hours for a young issue, else per day over 30 days."""
    now = now or timezone.now()
    hourly = now - issue.first_seen < timedelta(days=2)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    slots = 48 if hourly else 30
    trunc = TruncHour if hourly else TruncDay
    end = (
        now.replace(minute=0, second=0, microsecond=0)
        if hourly
        else timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    since = end - step * (slots - 1)
    counts = {
        row["bucket"]: row["n"]
        for row in Event.objects.filter(issue=issue, received_at__gte=since)
        .annotate(bucket=trunc("received_at"))
        .values("bucket")
        .annotate(n=Count("id"))
    }
    peak = max(counts.values(), default=0)
    width = CHART_WIDTH / slots
    bars = []
    for index in range(slots):
        start = since + step * index
        count = counts.get(start, 0)
        height = (CHART_HEIGHT - 4) * count / peak if peak else 0
        bars.append(Bar(index * width + 1, CHART_HEIGHT - height, width - 2, height, start, count))
    return Chart(bars, peak, "hour" if hourly else "day", since, end + step)
