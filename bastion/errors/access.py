"""Scoped reads of the errors module, built on ``bastion.core.access`` (404 outside the
caller's organizations, 403 for a role too low)."""

from __future__ import annotations

from dataclasses import replace

from django.db.models import QuerySet
from django.http import Http404

from bastion.core.access import Principal, get_project_for, require_role
from bastion.core.models import Project, Role, User
from bastion.errors.models import (
    DsnKey,
    Event,
    IgnoreRule,
    Issue,
    IssueComment,
    IssueReview,
    IssueTagValue,
    IssueView,
    ProjectErrorSettings,
)
from bastion.errors.search import ME, IssueSearch, parse_query
from bastion.errors.search import apply as apply_search


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
    search: IssueSearch | None = None,
) -> QuerySet[Issue]:
    """A project's issues, filtered by ``search`` (or by ``status`` and the query string, see
    ``bastion.errors.search``), newest activity first unless the search sorts otherwise."""
    project = get_project_for(principal, org_slug, project_slug)
    if search is None:
        parsed = parse_query(query)
        search = IssueSearch(
            text=parsed.text,
            tags=parsed.tags,
            status=status or parsed.status,
            assignee=parsed.assignee,
            assigned=parsed.assigned,
        )
    if search.assignee == ME:
        if principal.user is None:
            return Issue.objects.none()  # an API token is nobody: "assigned:me" matches nothing
        search = replace(search, assignee=principal.user.username)
    issues = apply_search(Issue.objects.filter(project=project), search)
    return issues.select_related("project__organization", "assignee")


def environments_of(principal: Principal, project: Project) -> list[str]:
    """The environments the project's events came from (for the issues list's filter)."""
    require_role(principal, project.organization, Role.VIEWER)
    rows = (
        IssueTagValue.objects.filter(issue__project=project, key="environment")
        .values_list("value", flat=True)
        .distinct()
        .order_by("value")
    )
    return list(rows[:100])


def assignable_members(principal: Principal, project: Project) -> QuerySet[User]:
    """Who an issue of ``project`` can be assigned to: the organization's active members."""
    require_role(principal, project.organization, Role.VIEWER)
    return User.objects.filter(
        memberships__organization=project.organization, is_active=True
    ).order_by("username")


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


def comments_for(principal: Principal, issue: Issue) -> QuerySet[IssueComment]:
    """Comments of an issue the caller already obtained through ``get_issue_for``."""
    require_role(principal, issue.project.organization, Role.VIEWER)
    return (
        IssueComment.objects.filter(issue=issue)
        .select_related("author")
        .order_by("created_at", "pk")
    )


def get_comment_for(principal: Principal, issue: Issue, comment_id: int) -> IssueComment:
    comment = comments_for(principal, issue).filter(pk=comment_id).first()
    if comment is None:
        raise Http404("No such comment.")
    return comment


def ignore_rules_for(principal: Principal, project: Project) -> QuerySet[IgnoreRule]:
    require_role(principal, project.organization, Role.VIEWER)
    return (
        IgnoreRule.objects.filter(project=project)
        .select_related("project__organization", "created_by")
        .order_by("pk")
    )


def fingerprint_rules_for(principal: Principal, project: Project) -> str:
    require_role(principal, project.organization, Role.VIEWER)
    settings = ProjectErrorSettings.objects.filter(project=project).first()
    return settings.fingerprint_rules if settings is not None else ""


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
