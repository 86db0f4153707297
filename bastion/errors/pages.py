"""Web pages of the errors module: a project's issues and an issue with its latest event, its
lifecycle actions and its review record (each opening of the page is recorded).

Thin views: reads through ``bastion.errors.access``, changes through the audited actions;
layout and helpers are the shared ones of ``bastion.web``.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from bastion.core.access import Principal, get_project_for
from bastion.core.models import Organization, Role
from bastion.errors import access, collaboration, deploys, issue_detail, search, services
from bastion.errors.models import DsnKey, Issue, IssueStatus
from bastion.errors.search import IssueSearch
from bastion.web.views._common import can, org_action, org_page, page, principal_of

PAGE_SIZE = 50
MAX_COMMENTS = 200


def _day(value: str, end: bool = False) -> datetime | None:
    """A date input (YYYY-MM-DD) as the start (or end) of that day, in the current time zone."""
    parsed = parse_date(value.strip()[:10]) if value.strip() else None
    if parsed is None:
        return None
    moment = datetime.combine(parsed, time.max if end else time.min)
    return timezone.make_aware(moment)


def _search_of(request: HttpRequest) -> tuple[IssueSearch, dict[str, str]]:
    """The search of the list's filter form, and the form's values to show back."""
    get = request.GET
    form = {name: get.get(name, "")[:200] for name in FILTER_FIELDS}
    status = form["status"] or IssueStatus.UNRESOLVED
    if status not in IssueStatus.values and status != "all":
        status = IssueStatus.UNRESOLVED
    form["status"] = status
    parsed = search.parse_query(form["q"])
    tags = parsed.tags
    for key in ("environment", "release"):
        if form[key]:
            tags = (*tags, (key, form[key]))
    assignee, assigned = parsed.assignee, parsed.assigned
    if form["assignee"] == UNASSIGNED:
        assigned = False
    elif form["assignee"]:
        assignee = form["assignee"]
    found = IssueSearch(
        text=parsed.text,
        tags=tags,
        status=parsed.status or (None if status == "all" else status),
        assignee=assignee,
        assigned=assigned,
        first_seen_after=_day(form["first_seen_after"]),
        last_seen_after=_day(form["last_seen_after"]),
        last_seen_before=_day(form["last_seen_before"], end=True),
        sort=form["sort"] if form["sort"] in search.SORTS else "last_seen",
    )
    return found, form


FILTER_FIELDS = (
    "status",
    "q",
    "environment",
    "release",
    "first_seen_after",
    "last_seen_after",
    "last_seen_before",
    "sort",
    "assignee",
)
UNASSIGNED = "-"  # the list's assignee filter: issues nobody looks after


@org_page()
def issues(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    wanted, form = _search_of(request)
    listed = access.issues_for(principal, organization.slug, project, search=wanted)
    key = None
    if can(request, Role.MEMBER):
        key = DsnKey.objects.filter(project=found, enabled=True).order_by("pk").first()
    context: dict[str, Any] = {
        "project": found,
        "issues": listed[:PAGE_SIZE],
        "total": listed.count(),
        "form": form,
        "status": form["status"],
        "statuses": ["unresolved", "resolved", "ignored", "all"],
        "sorts": [
            ("last_seen", "Last seen"),
            ("first_seen", "First seen"),
            ("events", "Events"),
            ("users", "Users"),
        ],
        "environments": access.environments_of(principal, found),
        "members": access.assignable_members(principal, found),
        "unassigned": UNASSIGNED,
        "query_string": request.GET.urlencode(),
        "can_change": can(request, Role.MEMBER),
        "dsn": services.dsn_of(key, request.build_absolute_uri("/")) if key else "",
        "deploys": deploys.recent_deploys(found),
    }
    return page(request, "errors/issues.html", context, section="errors")


@org_action(minimum=Role.MEMBER)
def issues_bulk(request: HttpRequest, organization: Organization, project: str) -> HttpResponseBase:
    """Resolve, ignore, reopen or assign the ticked issues of the list (then back to the same
    list)."""
    principal = principal_of(request)
    ids = [int(i) for i in request.POST.getlist("issue")[: services.MAX_BULK + 1] if i.isdigit()]
    chosen = [access.get_issue_for(principal, organization.slug, project, i) for i in ids]
    try:
        if request.POST.get("action") == "assign":
            username = request.POST.get("assignee", "")
            assignee = collaboration.assignee_named(organization, username)
            changed = collaboration.assign_issues(principal, chosen, assignee)
            done = f"assigned to {username}" if assignee else "unassigned"
        else:
            changed = services.bulk_set_status(principal, chosen, request.POST.get("status", ""))
            done = f"marked {changed[0].status}"
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{len(changed)} issue{'s' if len(changed) != 1 else ''} {done}.")
    back = QueryDict(request.POST.get("back", "")[:2000]).urlencode()
    target = reverse("errors:issues", kwargs={"org": organization.slug, "project": project})
    return redirect(f"{target}?{back}" if back else target)


@org_page()
def issue(
    request: HttpRequest, organization: Organization, project: str, issue_id: int
) -> HttpResponse:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    services.record_view(principal, found)
    events = access.events_for(principal, found)
    event = issue_detail.chosen_event(events, request.GET.get("event", ""))
    members = list(access.assignable_members(principal, found.project))
    member_ids = {m.pk for m in members}
    data = event.data if event is not None else {}
    context: dict[str, Any] = {
        "project": found.project,
        "issue": found,
        "event": event,
        "data": data,
        "nav": issue_detail.navigation(events, event) if event is not None else None,
        "exceptions": issue_detail.exceptions(data),
        "sections": issue_detail.sections(data),
        "breadcrumbs": [
            {k: str(b.get(k) or "") for k in ("category", "message", "level", "timestamp")}
            for b in data.get("breadcrumbs") or []
            if isinstance(b, dict)
        ],
        "attachments": event.attachments.all()[:50] if event is not None else [],
        "tags": issue_detail.tag_distributions(found),
        "chart": issue_detail.events_chart(found),
        "recent": events[:20],
        "can_change": can(request, Role.MEMBER),
        "members": members,
        # An assignee who has left the organization stays shown until someone reassigns.
        "former_assignee": found.assignee if found.assignee_id not in member_ids else None,
        "comments": access.comments_for(principal, found)[:MAX_COMMENTS],
        "can_moderate": can(request, Role.ADMIN),
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


@org_action(minimum=Role.MEMBER)
def issue_assign(
    request: HttpRequest, organization: Organization, project: str, issue_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    try:
        assignee = collaboration.assignee_named(organization, request.POST.get("assignee", ""))
        collaboration.assign_issue(principal, found, assignee)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"Assigned to {assignee.username}." if assignee else "Unassigned."
        )
    return redirect("errors:issue", org=organization.slug, project=project, issue_id=issue_id)


@org_action(minimum=Role.MEMBER)
def issue_comment(
    request: HttpRequest, organization: Organization, project: str, issue_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    try:
        collaboration.add_comment(principal, found, request.POST.get("body", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _to_comments(organization, project, issue_id)


@org_action(minimum=Role.MEMBER)
def issue_comment_delete(
    request: HttpRequest, organization: Organization, project: str, issue_id: int, comment_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    found = access.get_issue_for(principal, organization.slug, project, issue_id)
    comment = access.get_comment_for(principal, found, comment_id)
    collaboration.delete_comment(principal, comment)
    messages.success(request, "Comment deleted.")
    return _to_comments(organization, project, issue_id)


def _to_comments(organization: Organization, project: str, issue_id: int) -> HttpResponseBase:
    kwargs = {"org": organization.slug, "project": project, "issue_id": issue_id}
    return redirect(reverse("errors:issue", kwargs=kwargs) + "#comments")
