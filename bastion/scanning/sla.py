"""SLA due dates by severity: a finding is due ``days[severity]`` after it was first seen.

Configured with ``BASTION_SCAN_SLA_DAYS`` (e.g. ``critical=2,high=14,medium=30,low=90``; a
severity left out keeps its default, ``info`` has no SLA unless given). A malformed value fails
loudly. Overdue = active (new, open, reopened), not triaged away, and past its due date.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.utils import timezone

from bastion.scanning.models import Finding, FindingState, Triage

DEFAULT_DAYS: dict[str, int] = {"critical": 2, "high": 14, "medium": 30, "low": 90}
SEVERITIES = ("critical", "high", "medium", "low", "info")
ENV = "BASTION_SCAN_SLA_DAYS"
ACTIVE = (FindingState.NEW, FindingState.OPEN, FindingState.REOPENED)


def parse_days(value: str) -> dict[str, int]:
    days = dict(DEFAULT_DAYS)
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, number = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in SEVERITIES or not number.strip().isdigit():
            raise ImproperlyConfigured(
                f"{ENV}: {part!r} is not severity=days (severities: {', '.join(SEVERITIES)})"
            )
        days[name] = int(number)
    return days


def sla_days() -> dict[str, int]:
    return parse_days(os.environ.get(ENV, ""))


def due_at(finding: Finding, days: dict[str, int] | None = None) -> datetime | None:
    """When the finding must be fixed by, or None when its severity has no SLA or it is settled."""
    days = sla_days() if days is None else days
    if finding.severity not in days or finding.state not in ACTIVE or finding.triage:
        return None
    return finding.first_seen_at + timedelta(days=days[finding.severity])


def is_overdue(finding: Finding, now: datetime | None = None) -> bool:
    due = due_at(finding)
    return due is not None and due < (now or timezone.now())


def overdue_q(now: datetime | None = None, days: dict[str, int] | None = None) -> Q:
    """A filter for overdue findings, one indexed clause per severity."""
    now = now or timezone.now()
    days = sla_days() if days is None else days
    by_severity = Q(pk__in=[])
    for severity, limit in days.items():
        by_severity |= Q(severity=severity, first_seen_at__lt=now - timedelta(days=limit))
    return by_severity & Q(state__in=ACTIVE, triage=Triage.NONE)
