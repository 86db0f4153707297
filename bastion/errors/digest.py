"""The weekly review digest: one email per organization summarising last week's new and
regressed issues of every project, who reviewed each (and how soon), and which were never
reviewed, with links. Fired by a core ``Schedule`` of kind ``errors.digest`` (cron and time
zone set on the review-coverage page); sending is a task, so the scheduler never waits on SMTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from bastion.core import audit, schedules
from bastion.core.context import Actor
from bastion.core.models import Membership, Organization, Project, Role, Schedule
from bastion.core.notifications import absolute_url
from bastion.errors import coverage
from bastion.errors.actions import DIGEST_KIND
from bastion.errors.alert_models import DigestSettings

logger = logging.getLogger(__name__)


def after_text(seconds: int | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``40 s``: how soon a review came."""
    if seconds is None:
        return ""
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


@dataclass(frozen=True)
class DigestLine:
    row: coverage.CoverageRow
    url: str

    @property
    def review_after(self) -> str:
        return after_text(self.row.first_review_after_seconds)


@dataclass(frozen=True)
class ProjectDigest:
    project: Project
    report: coverage.Coverage
    coverage_url: str
    lines: list[DigestLine]


@dataclass(frozen=True)
class DigestContent:
    organization: Organization
    period: coverage.Period
    projects: list[ProjectDigest]

    @property
    def total(self) -> int:
        return sum(len(p.report.rows) for p in self.projects)

    @property
    def never_reviewed(self) -> int:
        return sum(len(p.report.never_reviewed) for p in self.projects)

    @property
    def subject(self) -> str:
        return (
            f"Error review digest for {self.organization.name}, {self.period.start} to "
            f"{self.period.end}: {self.total} new or regressed, {self.never_reviewed} never reviewed"
        )


def last_week(due_at: datetime, tz: str) -> coverage.Period:
    """The seven whole days before the day the digest is due (in the schedule's time zone)."""
    day: date = due_at.astimezone(ZoneInfo(tz)).date()
    return coverage.Period(day - timedelta(days=7), day - timedelta(days=1))


def _issue_path(project: Project, row: coverage.CoverageRow) -> str:
    kwargs = {"org": project.organization.slug, "project": project.slug, "issue_id": row.issue_id}
    return reverse("errors:issue", kwargs=kwargs)


def build(organization: Organization, period: coverage.Period, tz: str = "UTC") -> DigestContent:
    projects = []
    with timezone.override(ZoneInfo(tz)):
        for project in Project.objects.filter(organization=organization).order_by("slug"):
            project.organization = organization
            report = coverage.review_coverage(project, period)
            base = reverse(
                "errors:review-coverage", kwargs={"org": organization.slug, "project": project.slug}
            )
            query = f"?from={period.start}&to={period.end}"
            lines = [
                DigestLine(row, absolute_url(_issue_path(project, row))) for row in report.rows
            ]
            projects.append(ProjectDigest(project, report, absolute_url(base + query), lines))
    return DigestContent(organization, period, projects)


def recipients_for(organization: Organization) -> list[str]:
    """The configured addresses, else the owners' and admins' (those with an address)."""
    row = DigestSettings.objects.filter(organization=organization).first()
    if row is not None and row.recipients:
        return list(row.recipients)
    emails = Membership.objects.filter(
        organization=organization, role__in=[Role.OWNER, Role.ADMIN], user__is_active=True
    ).values_list("user__email", flat=True)
    return sorted({e.lower() for e in emails if e})


def render(content: DigestContent) -> tuple[str, str]:
    context = {"digest": content}
    text = render_to_string("errors/digest_email.txt", context)
    html = render_to_string("errors/digest_email.html", context)
    return text, html


def send_digest(organization: Organization, due_at: datetime, tz: str = "UTC") -> int:
    """Build and email last week's digest; the number of recipients (0: nobody to send to).
    Each sending is audited, so the evidence pack shows the digest went out."""
    content = build(organization, last_week(due_at, tz), tz)
    recipients = recipients_for(organization)
    if not recipients:
        logger.warning("errors digest of %s: no recipients (no owner or admin email)", organization)
        return 0
    text, html = render(content)
    message = EmailMultiAlternatives(
        subject=f"[Bastion] {content.subject}", body=text, to=recipients
    )
    message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)
    with transaction.atomic():
        audit.record(
            Actor.system("errors.digest"),
            "errors.digest.sent",
            organization=organization,
            object_type="core.organization",
            object_id=str(organization.pk),
            changes={
                "period": [str(content.period.start), str(content.period.end)],
                "issues": content.total,
                "never_reviewed": content.never_reviewed,
                "recipients": len(recipients),
            },
        )
    return len(recipients)


@schedules.register(DIGEST_KIND)
def fire_digest(schedule: Schedule, due_at: datetime) -> None:
    from bastion.errors.tasks import send_review_digest

    send_review_digest.enqueue(schedule.organization_id, due_at.isoformat(), schedule.timezone)
