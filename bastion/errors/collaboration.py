"""Named actions of working on issues together: assigning them to a member and commenting.

Each validates first (bad input changes nothing), runs in one transaction and audits every
change. Assigning an issue to someone else emails them through core notifications (topic
``errors.issue.assigned``), written in the same transaction and sent after commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.models import Membership, Organization, Project, Role, User, role_at_least
from bastion.core.notifications import Message, absolute_url, notify_user
from bastion.errors.models import Issue, IssueComment

MAX_BULK = 100
MAX_COMMENT = 5000
MAX_LISTED = 20  # issues named in one assignment email
ASSIGNED_TOPIC = "errors.issue.assigned"


def assignee_named(organization: Organization, username: str | None) -> User | None:
    """The active member of ``organization`` called ``username`` (None or "": nobody);
    ValidationError for anyone else, so a typo never assigns to a stranger."""
    if not username:
        return None
    user = User.objects.filter(
        username=username[:150], is_active=True, memberships__organization=organization
    ).first()
    if user is None:
        raise ValidationError({"assignee": ["The assignee must be a member of this organization."]})
    return user


def assign_issues(
    principal: Principal, issues: Sequence[Issue], assignee: User | None
) -> list[Issue]:
    """Assign issues of one organization to a member (None: unassign): all or none, each
    change audited; the new assignee, unless it is the caller, gets one email for them all."""
    if not issues or len(issues) > MAX_BULK:
        raise ValidationError({"issues": [f"Choose between 1 and {MAX_BULK} issues."]})
    organization = issues[0].project.organization
    if any(issue.project.organization_id != organization.pk for issue in issues):
        raise ValidationError({"issues": ["Issues of one organization at a time."]})
    require_role(principal, organization, Role.MEMBER)
    if (
        assignee is not None
        and not Membership.objects.filter(organization=organization, user=assignee).exists()
    ):
        raise ValidationError({"assignee": ["The assignee must be a member of this organization."]})
    changed: list[Issue] = []
    result: list[Issue] = []
    with transaction.atomic():
        locked = Issue.objects.select_for_update(of=("self",)).select_related("assignee", "project")
        for issue in issues:
            row = locked.get(pk=issue.pk)
            result.append(row)
            if row.assignee_id == (assignee.pk if assignee else None):
                continue
            before = row.assignee.username if row.assignee else None
            row.assignee = assignee
            row.save(update_fields=["assignee"])
            changed.append(row)
            audit.record(
                principal.actor,
                "errors.issue.assign",
                organization=organization,
                target=row,
                changes={"assignee": {"before": before, "after": _name(assignee)}},
            )
        if assignee is not None and changed and assignee != principal.actor.user:
            notify_user(organization, assignee, _assigned_message(principal, assignee, changed))
    return result


def assign_issue(principal: Principal, issue: Issue, assignee: User | None) -> Issue:
    return assign_issues(principal, [issue], assignee)[0]


def _name(user: User | None) -> str | None:
    return user.username if user is not None else None


def _issue_url(project: Project, issue: Issue) -> str:
    return absolute_url(
        reverse(
            "errors:issue",
            kwargs={
                "org": project.organization.slug,
                "project": project.slug,
                "issue_id": issue.pk,
            },
        )
    )


def _assigned_message(principal: Principal, assignee: User, issues: list[Issue]) -> Message:
    first = issues[0]
    project = first.project
    who = principal.actor.user.username if principal.actor.user else principal.actor.label
    if len(issues) == 1:
        subject = f"{who} assigned you an issue in {project.name}: {first.title}"
        url = _issue_url(project, first)
    else:
        subject = f"{who} assigned you {len(issues)} issues in {project.name}"
        path = reverse(
            "errors:issues", kwargs={"org": project.organization.slug, "project": project.slug}
        )
        url = absolute_url(f"{path}?q=assigned:{assignee.username}&status=all")
    lines = [f"{who} assigned these issues of {project.organization.slug}/{project.slug} to you:"]
    lines += [f"- #{i.pk} {i.title} ({i.event_count} events)" for i in issues[:MAX_LISTED]]
    if len(issues) > MAX_LISTED:
        lines.append(f"... and {len(issues) - MAX_LISTED} more")
    return Message(
        topic=ASSIGNED_TOPIC,
        subject=subject[:300],
        text="\n".join(lines),
        url=url,
        data={
            "organization": project.organization.slug,
            "project": project.slug,
            "assignee": assignee.username,
            "by": who,
            "issue_ids": [i.pk for i in issues],
        },
    )


# --- comments -----------------------------------------------------------------------------------


def add_comment(principal: Principal, issue: Issue, body: str) -> IssueComment:
    """A plain-text comment (kept as written, shown escaped) by a member."""
    organization = issue.project.organization
    require_role(principal, organization, Role.MEMBER)
    body = body.strip()
    if not body or len(body) > MAX_COMMENT:
        raise ValidationError({"body": [f"A comment of 1 to {MAX_COMMENT} characters."]})
    with transaction.atomic():
        comment = IssueComment.objects.create(
            issue=issue,
            author=principal.actor.user,
            author_label=principal.actor.label[:200],
            body=body,
        )
        Issue.objects.filter(pk=issue.pk).update(comment_count=F("comment_count") + 1)
        audit.record(
            principal.actor,
            "errors.issue.comment",
            organization=organization,
            target=issue,
            changes={"comment": comment.pk, "length": len(body)},
        )
    return comment


def delete_comment(principal: Principal, comment: IssueComment) -> None:
    """Its author or an admin of the organization may delete a comment."""
    issue = comment.issue
    organization = issue.project.organization
    role = require_role(principal, organization, Role.MEMBER)
    me = principal.actor.user
    is_author = me is not None and comment.author_id == me.pk
    if not is_author and not role_at_least(role, Role.ADMIN):
        raise PermissionDenied("Only its author or an admin may delete a comment.")
    with transaction.atomic():
        audit.record(
            principal.actor,
            "errors.issue.comment.delete",
            organization=organization,
            target=issue,
            changes={"comment": comment.pk, "author": comment.author_label},
        )
        comment.delete()
        Issue.objects.filter(pk=issue.pk, comment_count__gt=0).update(
            comment_count=F("comment_count") - 1
        )
