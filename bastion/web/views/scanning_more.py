"""Scanning pages for reports and schedules, spliced into ``scanning.patterns``: request a
report of a scan or a target (rendered by a task, progress polled with htmx), download it;
create, edit and delete a target's scan schedules. Views parse and delegate."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import path

from bastion.core.models import Organization, Role
from bastion.jobs.services import clusters_for
from bastion.scanning import access, scheduling
from bastion.scanning.reports import service as reports
from bastion.scanning.templatetags.scanning_panels import reports_context
from bastion.web.views._common import org_action, org_page, page, principal_of


def _error(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@org_action(Role.MEMBER)
def scan_report_create(
    request: HttpRequest, organization: Organization, scan_id: int
) -> HttpResponse:
    principal = principal_of(request)
    scan = access.get_scan_for(principal, scan_id, organization=organization)
    try:
        reports.request_report(principal, scan.target, scan, request.POST.get("format", "pdf"))
    except ValidationError as exc:
        _error(request, exc)
    return redirect("web:scan", org=organization.slug, scan_id=scan.pk)


@org_action(Role.MEMBER)
def target_report_create(
    request: HttpRequest, organization: Organization, target_id: int
) -> HttpResponse:
    principal = principal_of(request)
    target = access.get_target_for(principal, target_id, organization=organization)
    try:
        reports.request_report(principal, target, None, request.POST.get("format", "pdf"))
    except ValidationError as exc:
        _error(request, exc)
    return redirect("web:scan-target", org=organization.slug, target_id=target.pk)


@org_page()
def reports_panel(request: HttpRequest, organization: Organization, target_id: int) -> HttpResponse:
    """The reports card alone, polled by htmx while a report is rendering."""
    principal = principal_of(request)
    target = access.get_target_for(principal, target_id, organization=organization)
    scan = None
    scan_id = request.GET.get("scan", "")
    if scan_id.isdigit():
        scan = access.get_scan_for(principal, int(scan_id), organization=organization)
        if scan.target_id != target.pk:
            scan = None
    context = reports_context(target, scan)
    return page(request, "scanning/_reports.html", context, section="scanning")


@org_page()
def report_download(
    request: HttpRequest, organization: Organization, report_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    report = reports.get_report_for(principal, report_id, organization=organization)
    try:
        return reports.download(principal, report)
    except ValidationError as exc:
        _error(request, exc)
        return redirect("web:scan-target", org=organization.slug, target_id=report.target_id)


def _spec(request: HttpRequest) -> scheduling.ScheduleSpec:
    return scheduling.ScheduleSpec(
        cron=request.POST.get("cron", "")[:200],
        timezone=request.POST.get("timezone", "UTC")[:64],
        profile=request.POST.get("profile", "lightning")[:50],
        queue=request.POST.get("queue", "default")[:100] or "default",
        name=request.POST.get("name", "")[:200],
        enabled=request.POST.get("enabled", "on") == "on",
    )


@org_action(Role.ADMIN)
def schedule_create(
    request: HttpRequest, organization: Organization, target_id: int
) -> HttpResponse:
    principal = principal_of(request)
    target = access.get_target_for(principal, target_id, organization=organization)
    cluster = clusters_for(principal, organization).filter(name=request.POST.get("cluster")).first()
    if cluster is None:
        messages.error(request, "Choose a cluster whose agents run the scans.")
        return redirect("web:scan-target", org=organization.slug, target_id=target.pk)
    try:
        scheduling.create_schedule(principal, target, cluster, _spec(request))
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(request, "Schedule added.")
    return redirect("web:scan-target", org=organization.slug, target_id=target.pk)


@org_action(Role.ADMIN)
def schedule_update(
    request: HttpRequest, organization: Organization, schedule_id: int
) -> HttpResponse:
    principal = principal_of(request)
    row = scheduling.get_schedule_for(principal, schedule_id, organization=organization)
    cluster = clusters_for(principal, organization).filter(name=request.POST.get("cluster")).first()
    try:
        if cluster is None:
            raise ValidationError({"cluster": ["Choose a cluster of this organization."]})
        scheduling.update_schedule(principal, row, cluster, _spec(request))
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(request, "Schedule saved.")
    return redirect("web:scan-target", org=organization.slug, target_id=row.target_id)


@org_action(Role.ADMIN)
def schedule_delete(
    request: HttpRequest, organization: Organization, schedule_id: int
) -> HttpResponse:
    principal = principal_of(request)
    row = scheduling.get_schedule_for(principal, schedule_id, organization=organization)
    target_id = row.target_id
    scheduling.delete_schedule(principal, row)
    messages.success(request, "Schedule deleted.")
    return redirect("web:scan-target", org=organization.slug, target_id=target_id)


patterns = [
    path("scanning/scans/<int:scan_id>/reports/", scan_report_create, name="scan-report-create"),
    path(
        "scanning/targets/<int:target_id>/reports/",
        target_report_create,
        name="target-report-create",
    ),
    path(
        "scanning/targets/<int:target_id>/reports/panel/", reports_panel, name="scan-reports-panel"
    ),
    path("scanning/reports/<int:report_id>/download/", report_download, name="scan-report"),
    path(
        "scanning/targets/<int:target_id>/schedules/", schedule_create, name="scan-schedule-create"
    ),
    path("scanning/schedules/<int:schedule_id>/", schedule_update, name="scan-schedule-update"),
    path(
        "scanning/schedules/<int:schedule_id>/delete/",
        schedule_delete,
        name="scan-schedule-delete",
    ),
]
