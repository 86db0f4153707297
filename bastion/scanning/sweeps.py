"""Scanning's periodic work, run by the scheduler's tick (``bastion.core.scheduler``):
accepted risks whose expiry passed are reopened, and findings past their SLA due date raise an
overdue alert (topic ``scanning.finding.overdue``) through the organization's notification
channels — at most once per finding per day, claimed by compare-and-set on
``overdue_alerted_at`` so two schedulers or a restarted one cannot alert twice. Both are
audited as system actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from bastion.core import audit
from bastion.core.context import Actor
from bastion.core.notifications import Message, absolute_url, notify
from bastion.scanning import sla
from bastion.scanning.models import Finding
from bastion.scanning.services import reopen_expired_risks

TOPIC = "scanning.finding.overdue"
ALERT_EVERY = timedelta(days=1)
BATCH = 200  # findings alerted per tick at most; the rest go out on the next ticks


@dataclass(frozen=True)
class SweepReport:
    risks_reopened: int
    overdue_alerts: int


def _not_alerted_since(since: datetime) -> Q:
    return Q(overdue_alerted_at__isnull=True) | Q(overdue_alerted_at__lte=since)


def overdue_message(finding: Finding, due_at: datetime) -> Message:
    target = finding.target
    organization = target.project.organization
    path = reverse("web:finding", kwargs={"org": organization.slug, "finding_id": finding.pk})
    where = f"{finding.method} {finding.url}" + (
        f" (parameter {finding.parameter})" if finding.parameter else ""
    )
    text = "\n".join(
        [
            f"{finding.title} on {target.name} ({target.environment}) was due on "
            f"{due_at:%Y-%m-%d %H:%M} UTC and is still {finding.get_state_display().lower()}.",
            f"Severity: {finding.severity}. Where: {where}.",
            f"Assignee: {finding.assignee.username if finding.assignee else 'nobody'}.",
        ]
    )
    return Message(
        topic=TOPIC,
        subject=f"Overdue {finding.severity} finding on {target.name}: {finding.title}"[:300],
        text=text,
        url=absolute_url(path),
        data={
            "finding_id": finding.pk,
            "target": target.name,
            "project": target.project.slug,
            "type": finding.type,
            "severity": finding.severity,
            "state": finding.state,
            "url": finding.url,
            "due_at": due_at.isoformat(),
        },
    )


def alert_overdue(now: datetime | None = None) -> int:
    """Alert each overdue finding not alerted within the last day; returns how many."""
    now = now or timezone.now()
    since = now - ALERT_EVERY
    days = sla.sla_days()
    due = (
        Finding.objects.filter(sla.overdue_q(now, days))
        .filter(_not_alerted_since(since))
        .select_related("target__project__organization", "assignee")
        .order_by("first_seen_at", "pk")[:BATCH]
    )
    alerted = 0
    for finding in due:
        due_at = sla.due_at(finding, days)
        if due_at is None:
            continue
        organization = finding.target.project.organization
        with transaction.atomic():
            claimed = (
                Finding.objects.filter(pk=finding.pk)
                .filter(_not_alerted_since(since))
                .update(overdue_alerted_at=now)
            )
            if not claimed:
                continue
            deliveries = notify(
                organization,
                overdue_message(finding, due_at),
                project=finding.target.project,
                dedupe_key=f"scanning:finding:{finding.pk}:overdue",
                window=ALERT_EVERY,
            )
            audit.record(
                Actor.system("scheduler"),
                "finding.overdue_alert",
                organization=organization,
                target=finding,
                changes={"due_at": due_at, "deliveries": len(deliveries)},
            )
        alerted += 1
    return alerted


def sweep(now: datetime | None = None) -> SweepReport:
    now = now or timezone.now()
    return SweepReport(reopen_expired_risks(now), alert_overdue(now))
