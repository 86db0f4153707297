"""Issues, events and DSN keys over /api/v1/. Reads through ``bastion.errors.access``; writes
through the audited actions of ``bastion.errors.services``."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from bastion.core.access import get_project_for
from bastion.core.api import READ_ERRORS, WRITE_ERRORS, principal_of
from bastion.core.models import Role
from bastion.core.schemas import ErrorOut
from bastion.errors import access, collaboration, coverage, services
from bastion.errors.schemas import (
    CoverageParams,
    DsnKeyIn,
    DsnKeyOut,
    DsnKeyPatch,
    EventOut,
    EventPage,
    FingerprintRulesIn,
    FingerprintRulesOut,
    IgnoreIn,
    IgnoreRuleIn,
    IgnoreRuleOut,
    IssueOut,
    IssuePage,
    IssuePatch,
    IssuesBulkIn,
    IssueStatusIn,
    IssueStatusName,
    ReviewIn,
    ReviewOut,
)

router = Router(tags=["errors"])
PROJECT = "/organizations/{org}/projects/{project}"
MAX_PAGE = 200
MAX_OFFSET = 1_000_000_000
QUERY_ERRORS: dict[int, Any] = {400: ErrorOut, **READ_ERRORS}


class PageParams(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class IssueFilters(PageParams):
    status: IssueStatusName | None = None
    query: str = Field("", max_length=200)


def _window(params: PageParams) -> slice:
    return slice(params.offset, params.offset + params.limit)


@router.get(PROJECT + "/issues", response={200: IssuePage, **QUERY_ERRORS})
def list_issues(
    request: HttpRequest, org: str, project: str, filters: Query[IssueFilters]
) -> IssuePage:
    issues = access.issues_for(
        principal_of(request), org, project, status=filters.status, query=filters.query
    )
    page = issues[_window(filters)]
    return IssuePage(count=issues.count(), items=[IssueOut.of(i) for i in page])


@router.get(PROJECT + "/issues/{issue_id}", response={200: IssueOut, **READ_ERRORS})
def get_issue(request: HttpRequest, org: str, project: str, issue_id: int) -> IssueOut:
    return IssueOut.of(access.get_issue_for(principal_of(request), org, project, issue_id))


@router.patch(PROJECT + "/issues/{issue_id}", response={200: IssueOut, **WRITE_ERRORS})
def update_issue(
    request: HttpRequest, org: str, project: str, issue_id: int, data: IssuePatch
) -> IssueOut:
    """Assign the issue to a member (``"assignee": "<username>"``) or unassign it (null)."""
    principal = principal_of(request)
    get_project_for(principal, org, project, minimum=Role.MEMBER)
    issue = access.get_issue_for(principal, org, project, issue_id)
    if "assignee" in data.model_fields_set:
        assignee = collaboration.assignee_named(issue.project.organization, data.assignee)
        issue = collaboration.assign_issue(principal, issue, assignee)
    return IssueOut.of(issue)


@router.patch(PROJECT + "/issues", response={200: list[IssueOut], **WRITE_ERRORS})
def bulk_update_issues(
    request: HttpRequest, org: str, project: str, data: IssuesBulkIn
) -> list[IssueOut]:
    """Change the status and/or the assignee of several issues: all or none (404 if any id is
    not an issue of this project). Fields left out change nothing."""
    principal = principal_of(request)
    found_project = get_project_for(principal, org, project, minimum=Role.MEMBER)
    ids = list(dict.fromkeys(data.ids))
    found = {i.pk: i for i in access.issues_for(principal, org, project).filter(pk__in=ids)}
    if len(found) != len(ids):
        raise Http404("No such issue.")
    issues = [found[i] for i in ids]
    assign = "assignee" in data.model_fields_set
    assignee = (
        collaboration.assignee_named(found_project.organization, data.assignee) if assign else None
    )
    if issues:
        with transaction.atomic():
            if data.status is not None:
                issues = services.bulk_set_status(principal, issues, data.status)
            if assign:
                issues = collaboration.assign_issues(principal, issues, assignee)
    return [IssueOut.of(i) for i in issues]


@router.get(PROJECT + "/issues/{issue_id}/events", response={200: EventPage, **QUERY_ERRORS})
def list_events(
    request: HttpRequest, org: str, project: str, issue_id: int, params: Query[PageParams]
) -> EventPage:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    events = access.events_for(principal, issue)
    page = events[_window(params)]
    return EventPage(count=events.count(), items=[EventOut.of(e) for e in page])


@router.post(PROJECT + "/issues/{issue_id}/status", response={200: IssueOut, **WRITE_ERRORS})
def set_issue_status(
    request: HttpRequest, org: str, project: str, issue_id: int, data: IssueStatusIn
) -> IssueOut:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return IssueOut.of(services.set_issue_status(principal, issue, data.status))


@router.post(PROJECT + "/issues/{issue_id}/resolve", response={200: IssueOut, **WRITE_ERRORS})
def resolve_issue(request: HttpRequest, org: str, project: str, issue_id: int) -> IssueOut:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return IssueOut.of(services.set_issue_status(principal, issue, "resolved"))


@router.post(PROJECT + "/issues/{issue_id}/ignore", response={200: IssueOut, **WRITE_ERRORS})
def ignore_issue(request: HttpRequest, org: str, project: str, issue_id: int) -> IssueOut:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return IssueOut.of(services.set_issue_status(principal, issue, "ignored"))


@router.post(
    PROJECT + "/issues/{issue_id}/resolve-in-next-release",
    response={200: IssueOut, **WRITE_ERRORS},
)
def resolve_in_next_release(
    request: HttpRequest, org: str, project: str, issue_id: int
) -> IssueOut:
    """Resolved; only an event of a release the issue has not seen yet reopens it."""
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return IssueOut.of(services.resolve_issue(principal, issue, in_next_release=True))


@router.post(PROJECT + "/issues/{issue_id}/snooze", response={200: IssueOut, **WRITE_ERRORS})
def snooze_issue(
    request: HttpRequest, org: str, project: str, issue_id: int, data: IgnoreIn
) -> IssueOut:
    """Ignore until a date, N more events or N more users (whichever first); none: forever."""
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    changed = services.ignore_issue(
        principal,
        issue,
        until=data.until,
        more_events=data.more_events,
        more_users=data.more_users,
    )
    return IssueOut.of(changed)


@router.get(PROJECT + "/issues/{issue_id}/reviews", response={200: list[ReviewOut], **READ_ERRORS})
def list_reviews(request: HttpRequest, org: str, project: str, issue_id: int) -> list[ReviewOut]:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return [ReviewOut.of(r) for r in access.reviews_for(principal, issue)[:MAX_PAGE]]


@router.post(PROJECT + "/issues/{issue_id}/reviews", response={201: ReviewOut, **WRITE_ERRORS})
def mark_reviewed(
    request: HttpRequest, org: str, project: str, issue_id: int, data: ReviewIn
) -> Status[ReviewOut]:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return Status(201, ReviewOut.of(services.mark_reviewed(principal, issue, data.comment)))


@router.get(PROJECT + "/review-coverage", response={200: dict[str, Any], **QUERY_ERRORS})
def review_coverage(
    request: HttpRequest, org: str, project: str, params: Query[CoverageParams]
) -> dict[str, Any]:
    """New or regressed issues of a period (``from``/``to`` ISO dates, default the last 7
    days): who viewed and reviewed each, how soon, and which were never reviewed."""
    found = get_project_for(principal_of(request), org, project)
    period = coverage.parse_period(params.start, params.end)
    return coverage.as_json(coverage.review_coverage(found, period))


@router.get(PROJECT + "/ignore-rules", response={200: list[IgnoreRuleOut], **READ_ERRORS})
def list_ignore_rules(request: HttpRequest, org: str, project: str) -> list[IgnoreRuleOut]:
    principal = principal_of(request)
    found = get_project_for(principal, org, project)
    return [IgnoreRuleOut.of(r) for r in access.ignore_rules_for(principal, found)]


@router.post(PROJECT + "/ignore-rules", response={201: IgnoreRuleOut, **WRITE_ERRORS})
def create_ignore_rule(
    request: HttpRequest, org: str, project: str, data: IgnoreRuleIn
) -> Status[IgnoreRuleOut]:
    principal = principal_of(request)
    found = get_project_for(principal, org, project)
    rule = services.create_ignore_rule(
        principal, found, kind=data.kind, value=data.value, reason=data.reason
    )
    return Status(201, IgnoreRuleOut.of(rule))


@router.get(PROJECT + "/keys", response={200: list[DsnKeyOut], **READ_ERRORS})
def list_keys(request: HttpRequest, org: str, project: str) -> list[DsnKeyOut]:
    principal = principal_of(request)
    found = get_project_for(principal, org, project)
    return [DsnKeyOut.of(k, services.dsn_of(k)) for k in access.dsn_keys_for(principal, found)]


@router.post(PROJECT + "/keys", response={201: DsnKeyOut, **WRITE_ERRORS})
def create_key(request: HttpRequest, org: str, project: str, data: DsnKeyIn) -> Status[DsnKeyOut]:
    principal = principal_of(request)
    found = get_project_for(principal, org, project, minimum=Role.ADMIN)
    key = services.create_dsn_key(
        principal, found, label=data.label, rate_limit_per_minute=max(data.rate_limit_per_minute, 0)
    )
    return Status(201, DsnKeyOut.of(key, services.dsn_of(key)))


@router.patch(PROJECT + "/keys/{key_id}", response={200: DsnKeyOut, **WRITE_ERRORS})
def update_key(
    request: HttpRequest, org: str, project: str, key_id: int, data: DsnKeyPatch
) -> DsnKeyOut:
    principal = principal_of(request)
    found = get_project_for(principal, org, project)
    key = access.get_dsn_key_for(principal, found, key_id)
    updated = services.update_dsn_key(
        principal, key, enabled=data.enabled, rate_limit_per_minute=data.rate_limit_per_minute
    )
    return DsnKeyOut.of(updated, services.dsn_of(updated))


@router.get(PROJECT + "/fingerprint-rules", response={200: FingerprintRulesOut, **READ_ERRORS})
def get_fingerprint_rules(request: HttpRequest, org: str, project: str) -> FingerprintRulesOut:
    principal = principal_of(request)
    found = get_project_for(principal, org, project)
    return FingerprintRulesOut.of(access.fingerprint_rules_for(principal, found))


@router.put(PROJECT + "/fingerprint-rules", response={200: FingerprintRulesOut, **WRITE_ERRORS})
def set_fingerprint_rules(
    request: HttpRequest, org: str, project: str, data: FingerprintRulesIn
) -> FingerprintRulesOut:
    principal = principal_of(request)
    found = get_project_for(principal, org, project, minimum=Role.ADMIN)
    return FingerprintRulesOut.of(services.set_fingerprint_rules(principal, found, data.rules))
