"""Scoped reads of the errors module, built on ``bastion.core.access`` (404 outside the
caller's organizations, 403 for a role too low)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from bastion.core.access import Principal, get_project_for, require_role
from bastion.core.models import Project, Role
from bastion.errors.models import (
    DsnKey,
    Event,
    IgnoreRule,
    Issue,
    IssueReview,
    IssueStatus,
    IssueView,
)


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


def reviews_for(principal: Principal, issue: Issue) -> QuerySet[IssueReview]:
    require_role(principal, issue.project.organization, Role.VIEWER)
    return IssueReview.objects.filter(issue=issue).select_related("user").order_by("-reviewed_at")


def views_for(principal: Principal, issue: Issue) -> QuerySet[IssueView]:
    require_role(principal, issue.project.organization, Role.VIEWER)
    return IssueView.objects.filter(issue=issue).select_related("user").order_by("-viewed_at")


def ignore_rules_for(principal: Principal, project: Project) -> QuerySet[IgnoreRule]:
    require_role(principal, project.organization, Role.VIEWER)
    return (
        IgnoreRule.objects.filter(project=project)
        .select_related("project__organization", "created_by")
        .order_by("pk")
    )


def get_ignore_rule_for(principal: Principal, project: Project, rule_id: int) -> IgnoreRule:
    rule = ignore_rules_for(principal, project).filter(pk=rule_id).first()
    if rule is None:
        raise Http404("No such rule.")
    return rule


def suppressed_events_for(principal: Principal, rule: IgnoreRule) -> QuerySet[Event]:
    """Events of a rule the caller already obtained through ``get_ignore_rule_for``."""
    require_role(principal, rule.project.organization, Role.VIEWER)
    return (
        Event.objects.filter(project_id=rule.project_id, suppressed_by=rule)
        .select_related("issue")
        .order_by("-received_at", "-pk")
    )
