"""Scoped reads for scanning: anything outside the caller's organizations is 404."""

from __future__ import annotations

from django.db.models import QuerySet

from bastion.core.access import Principal, get_scoped_or_404
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
    return get_scoped_or_404(
        principal,
        targets_for(principal),
        target_id,
        org_path="project__organization",
        what="target",
        minimum=minimum,
        organization=organization,
    )


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
    return get_scoped_or_404(
        principal,
        scans_for(principal),
        scan_id,
        org_path="target__project__organization",
        what="scan",
        minimum=minimum,
        organization=organization,
    )


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
    return get_scoped_or_404(
        principal,
        findings_for(principal),
        finding_id,
        org_path="target__project__organization",
        what="finding",
        minimum=minimum,
        organization=organization,
    )
