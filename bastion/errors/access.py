"""Scoped reads of the errors module, built on ``bastion.core.access`` (404 outside the
caller's organizations, 403 for a role too low)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from bastion.core.access import Principal, get_project_for, require_role
from bastion.core.models import Project, Role
from bastion.errors.models import DsnKey, Event, Issue, IssueStatus


def dsn_keys_for(principal: Principal, project: Project) -> QuerySet[DsnKey]:
    require_role(principal, project.organization, Role.MEMBER)
    return DsnKey.objects.filter(project=project).select_related("project").order_by("pk")


def get_dsn_key_for(principal: Principal, project: Project, key_id: int) -> DsnKey:
    key = dsn_keys_for(principal, project).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key


def issues_for(
    principal: Principal,
    org_slug: str,
    project_slug: str,
    *,
    status: str | None = None,
    query: str = "",
) -> QuerySet[Issue]:
    project = get_project_for(principal, org_slug, project_slug)
    issues = Issue.objects.filter(project=project)
    if status:
        if status not in IssueStatus.values:
            issues = issues.none()
        issues = issues.filter(status=status)
    if query.strip():
        text = query.strip()[:200]
        issues = issues.filter(Q(title__icontains=text) | Q(culprit__icontains=text))
    return issues.select_related("project__organization").order_by("-last_seen", "-pk")


def get_issue_for(principal: Principal, org_slug: str, project_slug: str, issue_id: int) -> Issue:
    issue = issues_for(principal, org_slug, project_slug).filter(pk=issue_id).first()
    if issue is None:
        raise Http404("No such issue.")
    return issue


def events_for(principal: Principal, issue: Issue) -> QuerySet[Event]:
    """Events of an issue the caller already obtained through ``get_issue_for``."""
    require_role(principal, issue.project.organization, Role.VIEWER)
    return Event.objects.filter(issue=issue).order_by("-received_at", "-pk")
