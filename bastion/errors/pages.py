"""Web pages of the errors module: a project's issues and an issue with its latest event, its
lifecycle actions and its review record (each opening of the page is recorded).

Thin views: reads through ``bastion.errors.access``, changes through the audited actions;
layout and helpers are the shared ones of ``bastion.web``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bastion.core.access import Principal, get_project_for
from bastion.core.models import Organization, Role
from bastion.errors import access, deploys, services
from bastion.errors.models import DsnKey, Issue, IssueStatus
from bastion.web.views._common import can, org_action, org_page, page, principal_of

PAGE_SIZE = 50


@org_page()
def issues(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    status = request.GET.get("status", IssueStatus.UNRESOLVED)
    if status not in IssueStatus.values and status != "all":
        status = IssueStatus.UNRESOLVED
    query = request.GET.get("q", "")[:200]
    listed = access.issues_for(
        principal,
        organization.slug,
        project,
        status=None if status == "all" else status,
        query=query,
    )
    key = None
    if can(request, Role.MEMBER):
        key = DsnKey.objects.filter(project=found, enabled=True).order_by("pk").first()
    context: dict[str, Any] = {
        "project": found,
        "issues": listed[:PAGE_SIZE],
        "total": listed.count(),
        "status": status,
        "statuses": ["unresolved", "resolved", "ignored", "all"],
        "query": query,
        "dsn": services.dsn_of(key, request.build_absolute_uri("/")) if key else "",
        "deploys": deploys.recent_deploys(found),
    }
    return page(request, "errors/issues.html", context, section="errors")


def _in_app_first(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Frames innermost first (as people read a trace), each marked in-app or not."""
    return [
        {
            "where": frame.get("module") or frame.get("filename") or frame.get("abs_path") or "?",
            "function": frame.get("function") or "?",
            "lineno": frame.get("lineno") or "",
            "context_line": frame.get("context_line") or "",
            "in_app": bool(frame.get("in_app")),
        }
        for frame in reversed(frames)
    ]


@org_page()
def issue(
    request: HttpRequest, organization: Organization, project: str, issue_id: int
) -> HttpResponse:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    services.record_view(principal, found)
    events = access.events_for(principal, found)
    latest = events.first()
    data = latest.data if latest is not None else {}
    exceptions = [
        {**exc, "frames": _in_app_first((exc.get("stacktrace") or {}).get("frames") or [])}
        for exc in reversed(data.get("exception") or [])  # the raised one first, causes after
    ]
    context: dict[str, Any] = {
        "project": found.project,
        "issue": found,
        "event": latest,
        "data": data,
        "exceptions": exceptions,
        "breadcrumbs": [
            {k: str(b.get(k) or "") for k in ("category", "message", "level")}
            for b in data.get("breadcrumbs") or []
        ],
        "recent": events[:20],
        "can_change": can(request, Role.MEMBER),
        "reviews": access.reviews_for(principal, found)[:50],
        "views": access.views_for(principal, found)[:20],
        "view_count": access.views_for(principal, found).count(),
        "ignore_options": IGNORE_OPTIONS,
        "next_release": deploys.next_release(found),
        "release_deploys": deploys.release_deploys(found),
    }
    return page(request, "errors/issue.html", context, section="errors")


IGNORE_OPTIONS = [
    ("forever", "forever"),
    ("until", "until a date"),
    ("events", "until N more events"),
    ("users", "until N more users"),
]


def _positive(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ValidationError({name: ["A whole number."]}) from exc


def _until(value: str) -> datetime:
    parsed = parse_datetime(value.strip()) if value.strip() else None
    if parsed is None:
        raise ValidationError({"until": ["A date and time (YYYY-MM-DDTHH:MM)."]})
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _change_from_form(principal: Principal, issue: Issue, form: Any) -> Issue:
    """The status form: resolve (now or in the next release), ignore (with a condition),
    reopen."""
    status = form.get("status", "")
    if status == IssueStatus.RESOLVED:
        return services.resolve_issue(
            principal, issue, in_next_release=form.get("in_next_release") == "1"
        )
    if status == IssueStatus.IGNORED:
        kind = form.get("ignore_for", "forever")
        count = form.get("count", "")
        return services.ignore_issue(
            principal,
            issue,
            until=_until(form.get("until", "")) if kind == "until" else None,
            more_events=_positive(count, "count") if kind == "events" else None,
            more_users=_positive(count, "count") if kind == "users" else None,
        )
    return services.set_issue_status(principal, issue, status)


@org_action(minimum=Role.MEMBER)
def issue_status(
    request: HttpRequest, organization: Organization, project: str, issue_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    try:
        changed = _change_from_form(principal, found, request.POST)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Issue marked {changed.status}.")
    return redirect("errors:issue", org=organization.slug, project=project, issue_id=issue_id)


@org_action(minimum=Role.MEMBER)
def issue_review(
    request: HttpRequest, organization: Organization, project: str, issue_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    try:
        services.mark_reviewed(principal, found, request.POST.get("comment", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Marked reviewed.")
    return redirect("errors:issue", org=organization.slug, project=project, issue_id=issue_id)
