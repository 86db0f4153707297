"""The reports and schedules cards of the scan and target pages, as inclusion tags, so the pages
that show them only name them. The target and scan they get were fetched through the scoped
helpers by the page's view."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest

from bastion.core.access import Principal
from bastion.jobs.services import clusters_for
from bastion.scanning import scheduling
from bastion.scanning.engine.profiles import discover_profiles
from bastion.scanning.models import ReportFormat, ReportState, Scan, ScanReport, Target

register = template.Library()
REPORTS_SHOWN = 20
POLL_S = 2
PASSED_ON = ("csrf_token", "current_org", "is_member", "is_admin", "request")


def reports_context(target: Target, scan: Scan | None) -> dict[str, Any]:
    rows = ScanReport.objects.filter(target=target)
    rows = rows.filter(scan=scan) if scan is not None else rows.filter(scan__isnull=True)
    reports = list(rows.order_by("-created_at", "-pk")[:REPORTS_SHOWN])
    return {
        "target": target,
        "scan": scan,
        "reports": reports,
        "formats": ReportFormat.choices,
        "rendering": any(r.state in (ReportState.QUEUED, ReportState.RUNNING) for r in reports),
        "poll_s": POLL_S,
    }


def _passed_on(context: template.Context) -> dict[str, Any]:
    return {key: context.get(key) for key in PASSED_ON}


@register.inclusion_tag("scanning/_reports.html", takes_context=True)
def reports_panel(context: template.Context, target: Target, scan: Scan | None = None) -> dict:
    values = _passed_on(context)
    values.update(reports_context(target, scan))
    return values


@register.inclusion_tag("scanning/_schedules.html", takes_context=True)
def schedules_panel(context: template.Context, target: Target) -> dict:
    request: HttpRequest = context["request"]
    principal = Principal.of_user(request.user)  # type: ignore[arg-type]
    rows = list(scheduling.schedules_for(principal, target))
    values = _passed_on(context)
    values.update(
        target=target,
        rows=[(row, scheduling.next_runs(row)) for row in rows],
        clusters=clusters_for(principal, context["current_org"]),
        profiles=sorted(discover_profiles()),
    )
    return values
