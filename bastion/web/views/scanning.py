"""Scanning pages under ``/o/<org>/scanning/``: targets, a target with its scans, a scan with
live progress (htmx) and its findings, a finding with its evidence, triage and comments, and
the overdue view. Views parse and delegate; every read goes through ``scanning.access``."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path

from bastion.core.access import projects_for
from bastion.core.models import Organization, Role, User
from bastion.jobs.services import agents_for, clusters_for
from bastion.scanning import access, actions, services, sla
from bastion.scanning.models import Environment, Finding, Scan, ScanState, Target, Triage
from bastion.scanning.progress import progress_of
from bastion.web.views import scanning_findings
from bastion.web.views._common import org_action, org_page, page, principal_of

POLL_S = 2
PAGE = 200
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.type, f.url))


def _target(request: HttpRequest, organization: Organization, target_id: int) -> Target:
    return access.get_target_for(principal_of(request), target_id, organization=organization)


def _scan(request: HttpRequest, organization: Organization, scan_id: int) -> Scan:
    return access.get_scan_for(principal_of(request), scan_id, organization=organization)


def _finding(request: HttpRequest, organization: Organization, finding_id: int) -> Finding:
    return access.get_finding_for(principal_of(request), finding_id, organization=organization)


def _error(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@org_page()
def landing(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    active = Q(findings__state__in=sla.ACTIVE, findings__triage=Triage.NONE)
    targets = access.targets_for(principal, organization).annotate(
        open_findings=Count("findings", filter=active)
    )[:PAGE]
    context = {
        "targets": targets,
        "overdue": access.findings_for(principal)
        .filter(target__project__organization=organization)
        .filter(sla.overdue_q())
        .count(),
        "projects": projects_for(principal, organization),
        "environments": Environment.choices,
        "has_projects": projects_for(principal, organization).exists(),
        "has_agents": agents_for(principal, organization).exists(),
    }
    return page(request, "web/modules/scanning.html", context, section="scanning")


@org_action(Role.ADMIN)
def target_create(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    project = projects_for(principal, organization).filter(slug=request.POST.get("project")).first()
    if project is None:
        messages.error(request, "Choose a project of this organization.")
        return redirect("web:scanning", org=organization.slug)
    try:
        target = services.create_target(
            principal,
            project,
            name=request.POST.get("name", "").strip()[:200],
            base_url=request.POST.get("base_url", "").strip()[:2000],
            environment=request.POST.get("environment", Environment.STAGING),
        )
    except ValidationError as exc:
        _error(request, exc)
        return redirect("web:scanning", org=organization.slug)
    messages.success(request, f"Target {target.name} added. Verify it before scanning.")
    return redirect("web:scan-target", org=organization.slug, target_id=target.pk)


@org_page()
def target_detail(request: HttpRequest, organization: Organization, target_id: int) -> HttpResponse:
    principal = principal_of(request)
    target = _target(request, organization, target_id)
    findings = access.findings_for(principal, target).filter(state__in=sla.ACTIVE)
    context = {
        "target": target,
        "scans": access.scans_for(principal, target)[:50],
        "findings": _sorted(list(findings.select_related("assignee")[:PAGE])),
        "clusters": clusters_for(principal, organization),
        "verification_path": services.VERIFICATION_PATH,
        "verification_header": services.VERIFICATION_HEADER,
    }
    return page(request, "scanning/target.html", context, section="scanning")


@org_action(Role.ADMIN)
def target_verify(request: HttpRequest, organization: Organization, target_id: int) -> HttpResponse:
    target = _target(request, organization, target_id)
    try:
        services.verify_target(principal_of(request), target)
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(request, f"{target.name} is verified.")
    return redirect("web:scan-target", org=organization.slug, target_id=target.pk)


@org_action(Role.MEMBER)
def scan_start(request: HttpRequest, organization: Organization, target_id: int) -> HttpResponse:
    principal = principal_of(request)
    target = _target(request, organization, target_id)
    cluster = clusters_for(principal, organization).filter(name=request.POST.get("cluster")).first()
    if cluster is None:
        messages.error(request, "Choose a cluster whose agents run the scan.")
        return redirect("web:scan-target", org=organization.slug, target_id=target.pk)
    try:
        scan = services.start_scan(
            principal, target, cluster, profile=request.POST.get("profile", "lightning")
        )
    except ValidationError as exc:
        _error(request, exc)
        return redirect("web:scan-target", org=organization.slug, target_id=target.pk)
    return redirect("web:scan", org=organization.slug, scan_id=scan.pk)


def _scan_context(request: HttpRequest, scan: Scan) -> dict[str, object]:
    findings = Finding.objects.filter(last_seen_scan=scan).select_related("assignee")
    return {
        "scan": scan,
        "target": scan.target,
        "progress": progress_of(scan),
        "live": scan.state in (ScanState.QUEUED, ScanState.RUNNING),
        "findings": _sorted(list(findings[:PAGE])),
        "poll_s": POLL_S,
    }


@org_page()
def scan_detail(request: HttpRequest, organization: Organization, scan_id: int) -> HttpResponse:
    scan = _scan(request, organization, scan_id)
    return page(request, "scanning/scan.html", _scan_context(request, scan), section="scanning")


@org_page()
def scan_live(request: HttpRequest, organization: Organization, scan_id: int) -> HttpResponse:
    scan = _scan(request, organization, scan_id)
    return page(
        request, "scanning/_scan_live.html", _scan_context(request, scan), section="scanning"
    )


@org_action(Role.MEMBER)
def scan_cancel(request: HttpRequest, organization: Organization, scan_id: int) -> HttpResponse:
    scan = _scan(request, organization, scan_id)
    try:
        actions.cancel_scan(principal_of(request), scan)
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(request, "The scan is being canceled.")
    return redirect("web:scan", org=organization.slug, scan_id=scan.pk)


@org_page()
def finding_detail(
    request: HttpRequest, organization: Organization, finding_id: int
) -> HttpResponse:
    finding = _finding(request, organization, finding_id)
    context = {
        "finding": finding,
        "target": finding.target,
        "due_at": sla.due_at(finding),
        "overdue": sla.is_overdue(finding),
        "comments": finding.comments.all(),
        "members": User.objects.filter(memberships__organization=organization).order_by("username"),
        "triage_choices": Triage.choices,
        **scanning_findings.finding_extras(request, finding),
    }
    return page(request, "scanning/finding.html", context, section="scanning")


def _expiry(value: str) -> datetime | None:
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


@org_action(Role.MEMBER)
def finding_triage(
    request: HttpRequest, organization: Organization, finding_id: int
) -> HttpResponse:
    finding = _finding(request, organization, finding_id)
    username = request.POST.get("assignee", "").strip()
    assignee = (
        User.objects.filter(username=username, memberships__organization=organization).first()
        if username
        else None
    )
    try:
        services.triage_finding(
            principal_of(request),
            finding,
            triage=request.POST.get("triage", ""),
            reason=request.POST.get("reason", "").strip()[:5000],
            accepted_until=_expiry(request.POST.get("accepted_until", "")),
            assignee=assignee,
        )
    except ValidationError as exc:
        _error(request, exc)
    else:
        messages.success(request, "Triage saved.")
    return redirect("web:finding", org=organization.slug, finding_id=finding.pk)


@org_action(Role.MEMBER)
def finding_comment(
    request: HttpRequest, organization: Organization, finding_id: int
) -> HttpResponse:
    finding = _finding(request, organization, finding_id)
    try:
        actions.add_comment(principal_of(request), finding, request.POST.get("body", ""))
    except ValidationError as exc:
        _error(request, exc)
    return redirect("web:finding", org=organization.slug, finding_id=finding.pk)


@org_page()
def overdue(request: HttpRequest, organization: Organization) -> HttpResponse:
    findings = (
        access.findings_for(principal_of(request))
        .filter(target__project__organization=organization)
        .filter(sla.overdue_q())
        .select_related("assignee")
    )
    rows = [(f, sla.due_at(f)) for f in _sorted(list(findings[:PAGE]))]
    context = {"rows": rows, "sla_days": sla.sla_days()}
    return page(request, "scanning/overdue.html", context, section="scanning")


# Spliced into ``/o/<org>/`` by ``bastion.web.urls``.
patterns = [
    path("scanning/", landing, name="scanning"),
    path("scanning/targets/", target_create, name="scan-target-create"),
    path("scanning/targets/<int:target_id>/", target_detail, name="scan-target"),
    path("scanning/targets/<int:target_id>/verify/", target_verify, name="scan-target-verify"),
    path("scanning/targets/<int:target_id>/scans/", scan_start, name="scan-start"),
    path("scanning/scans/<int:scan_id>/", scan_detail, name="scan"),
    path("scanning/scans/<int:scan_id>/live/", scan_live, name="scan-live"),
    path("scanning/scans/<int:scan_id>/cancel/", scan_cancel, name="scan-cancel"),
    path("scanning/findings/<int:finding_id>/", finding_detail, name="finding"),
    path("scanning/findings/<int:finding_id>/triage/", finding_triage, name="finding-triage"),
    path("scanning/findings/<int:finding_id>/comments/", finding_comment, name="finding-comment"),
    path("scanning/overdue/", overdue, name="scan-overdue"),
]

# Reports and schedules have their own views module; their pages sit beside these.
from bastion.web.views import scanning_more  # noqa: E402

patterns += scanning_more.patterns
