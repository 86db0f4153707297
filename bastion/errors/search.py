"""The issues list's search: a query string in Sentry's style plus explicit filters.

``q`` holds free text (matched in the title and culprit) and ``key:value`` tokens, quoted when
they hold spaces (``region:eu``, ``browser:"Firefox 128"``, ``environment:production``,
``release:shop@1.4.2``, ``level:error``): each token must hold for some event of the issue, found
through the per-issue tag counters (``IssueTagValue``, indexed by key and value). ``is:resolved``
(``unresolved``, ``ignored``) filters the status. ``assigned:me`` (the caller),
``assigned:<username>``, ``is:assigned`` and ``is:unassigned`` filter the assignee. First/last
seen bounds and the sort order come as their own parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from bastion.errors.models import Issue, IssueStatus, IssueTagValue

MAX_TOKENS = 10
ME = "me"  # ``assigned:me``: the caller
SORTS = {
    "last_seen": ("-last_seen", "-pk"),
    "first_seen": ("-first_seen", "-pk"),
    "events": ("-event_count", "-last_seen", "-pk"),
    "users": ("-users_affected", "-last_seen", "-pk"),
}
_TOKEN = re.compile(r'(?:([\w.@-]+):(?:"([^"]*)"|(\S+)))|"([^"]*)"|(\S+)')


@dataclass(frozen=True)
class IssueSearch:
    text: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    status: str | None = None
    first_seen_after: datetime | None = None
    first_seen_before: datetime | None = None
    last_seen_after: datetime | None = None
    last_seen_before: datetime | None = None
    sort: str = "last_seen"
    # A username (``me`` is the caller's, resolved by ``bastion.errors.access``); and whether
    # the issue has any assignee at all (None: either).
    assignee: str | None = None
    assigned: bool | None = None


@dataclass(frozen=True)
class ParsedQuery:
    text: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    status: str | None = None
    assignee: str | None = None
    assigned: bool | None = None


def parse_query(query: str) -> ParsedQuery:
    """Free text, ``key:value`` pairs, an ``is:`` status and assignee filters from a query."""
    words: list[str] = []
    tags: list[tuple[str, str]] = []
    status: str | None = None
    assignee: str | None = None
    assigned: bool | None = None
    for match in _TOKEN.finditer(query[:500]):
        key, quoted, bare, phrase, word = match.groups()
        if key is not None:
            value = quoted if quoted is not None else bare or ""
            if key.lower() == "is" and value.lower() in IssueStatus.values:
                status = value.lower()
            elif key.lower() == "is" and value.lower() in ("assigned", "unassigned"):
                assigned = value.lower() == "assigned"
            elif key.lower() == "assigned" and value:
                assignee = value[:150]
            elif len(tags) < MAX_TOKENS:
                tags.append((key[:200], value[:200]))
        else:
            words.append(phrase if phrase is not None else word or "")
    text = " ".join(w for w in words if w)[:200]
    return ParsedQuery(text, tuple(tags), status, assignee, assigned)


def apply(issues: QuerySet[Issue], search: IssueSearch) -> QuerySet[Issue]:
    status = search.status
    if status:
        issues = issues.filter(status=status) if status in IssueStatus.values else issues.none()
    if search.assignee is not None:
        issues = issues.filter(assignee__username=search.assignee)
    if search.assigned is not None:
        issues = issues.filter(assignee__isnull=not search.assigned)
    if search.text:
        issues = issues.filter(Q(title__icontains=search.text) | Q(culprit__icontains=search.text))
    for key, value in search.tags:
        tagged = IssueTagValue.objects.filter(key=key, value=value).values("issue_id")
        issues = issues.filter(pk__in=tagged)
    bounds = {
        "first_seen__gte": search.first_seen_after,
        "first_seen__lte": search.first_seen_before,
        "last_seen__gte": search.last_seen_after,
        "last_seen__lte": search.last_seen_before,
    }
    issues = issues.filter(**{k: v for k, v in bounds.items() if v is not None})
    return issues.order_by(*SORTS.get(search.sort, SORTS["last_seen"]))
