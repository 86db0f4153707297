"""Web pages of the errors module: a project's issues and an issue with its latest event.

Thin views: reads through ``bastion.errors.access``, the status change through the audited
action; layout and helpers are the shared ones of ``bastion.web``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from bastion.core.access import get_project_for
from bastion.core.models import Organization, Role
from bastion.errors import access, services
from bastion.errors.models import DsnKey, IssueStatus
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
    }
    return page(request, "errors/issue.html", context, section="errors")


@org_action(minimum=Role.MEMBER)
def issue_status(
    request: HttpRequest, organization: Organization, project: str, issue_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    try:
        services.set_issue_status(principal, found, request.POST.get("status", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Issue marked {request.POST.get('status')}.")
    return redirect("errors:issue", org=organization.slug, project=project, issue_id=issue_id)
