"""Scoped reads for scanning: anything outside the caller's organizations is 404."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from bastion.core.access import Principal, require_role
from bastion.core.models import Organization, Role
from bastion.scanning.models import Finding, Scan, Target


def targets_for(principal: Principal, organization: Organization | None = None) -> QuerySet[Target]:
    targets = Target.objects.filter(project__organization__in=principal.organizations())
    if organization is not None:
        targets = targets.filter(project__organization=organization)
    return targets.select_related("project__organization").order_by("project__slug", "name")


def get_target_for(
    principal: Principal,
    target_id: int,
    minimum: str = Role.VIEWER,
    organization: Organization | None = None,
) -> Target:
    """One target of the caller's organizations (of ``organization`` when given), else 404;
    403 when the caller's role there is below ``minimum``."""
    found = targets_for(principal).filter(pk=target_id)
    if organization is not None:
        found = found.filter(project__organization=organization)
    target = found.first()
    if target is None:
        raise Http404("No such target.")
    require_role(principal, target.project.organization, minimum)
    return target


def scans_for(principal: Principal, target: Target | None = None) -> QuerySet[Scan]:
    scans = Scan.objects.filter(target__project__organization__in=principal.organizations())
    if target is not None:
        scans = scans.filter(target=target)
    return scans.select_related("target__project__organization").order_by("-created_at", "-pk")


def get_scan_for(
    principal: Principal,
    scan_id: int,
    minimum: str = Role.VIEWER,
    organization: Organization | None = None,
) -> Scan:
    """One scan of the caller's organizations (of ``organization`` when given), else 404;
    403 when the caller's role there is below ``minimum``."""
    found = scans_for(principal).filter(pk=scan_id)
    if organization is not None:
        found = found.filter(target__project__organization=organization)
    scan = found.first()
    if scan is None:
        raise Http404("No such scan.")
    require_role(principal, scan.target.project.organization, minimum)
    return scan


def findings_for(principal: Principal, target: Target | None = None) -> QuerySet[Finding]:
    findings = Finding.objects.filter(target__project__organization__in=principal.organizations())
    if target is not None:
        findings = findings.filter(target=target)
    return findings.select_related("target__project__organization").order_by("-last_seen_at", "pk")


def get_finding_for(
    principal: Principal,
    finding_id: int,
    minimum: str = Role.VIEWER,
    organization: Organization | None = None,
) -> Finding:
    """One finding of the caller's organizations (of ``organization`` when given), else 404;
    403 when the caller's role there is below ``minimum``."""
    found = findings_for(principal).filter(pk=finding_id)
    if organization is not None:
        found = found.filter(target__project__organization=organization)
    finding = found.first()
    if finding is None:
        raise Http404("No such finding.")
    require_role(principal, finding.target.project.organization, minimum)
    return finding
