"""Named actions behind the scanning API and pages, next to the original ones in ``services``:
editing and deleting a target, cancelling a scan, commenting on a finding. Each checks the
caller's role, runs in one transaction and writes its audit row."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.models import Role
from bastion.jobs import dispatch
from bastion.scanning.models import (
    Environment,
    Finding,
    FindingComment,
    Scan,
    ScanState,
    Target,
)
from bastion.scanning.services import _patterns, _validate_url

MAX_COMMENT = 10_000


def update_target(
    principal: Principal,
    target: Target,
    *,
    name: str | None = None,
    base_url: str | None = None,
    environment: str | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    extra_hosts: Iterable[str] | None = None,
    rate_limit: float | None = None,
    concurrency: int | None = None,
) -> Target:
    """Change a target's settings; a new base URL must be verified again before any scan."""
    require_role(principal, target.project.organization, Role.ADMIN)
    changes: dict[str, object] = {}
    if name is not None and name != target.name:
        if not name.strip() or len(name) > 200:
            raise ValidationError({"name": ["A name of 1 to 200 characters."]})
        if Target.objects.filter(project=target.project, name=name).exclude(pk=target.pk).exists():
            raise ValidationError({"name": ["A target with that name already exists here."]})
        changes["name"] = name
    if base_url is not None and base_url != target.base_url:
        _validate_url(base_url)
        changes.update(base_url=base_url, verification_method="", verified_at=None)
    if environment is not None:
        if environment not in Environment.values:
            raise ValidationError(
                {"environment": [f"Choose one of {', '.join(Environment.values)}."]}
            )
        changes["environment"] = environment
    for field, values in (("include", include), ("exclude", exclude), ("extra_hosts", extra_hosts)):
        if values is not None:
            changes[field] = _patterns(values, field)
    if rate_limit is not None:
        if rate_limit < 0:
            raise ValidationError({"rate_limit": ["Rate must be >= 0."]})
        changes["rate_limit"] = rate_limit
    if concurrency is not None:
        if not 0 <= concurrency <= 64:
            raise ValidationError({"concurrency": ["Concurrency must be 0..64."]})
        changes["concurrency"] = concurrency
    if not changes:
        return target
    with transaction.atomic():
        for key, value in changes.items():
            setattr(target, key, value)
        target.save(update_fields=list(changes))
        audit.record(
            principal.actor,
            "scan_target.update",
            organization=target.project.organization,
            target=target,
            changes={k: v for k, v in changes.items() if k != "verified_at"},
        )
    return target


def delete_target(principal: Principal, target: Target) -> None:
    """Delete a target with its scans and findings (their audit rows stay)."""
    organization = target.project.organization
    require_role(principal, organization, Role.ADMIN)
    with transaction.atomic():
        audit.record(
            principal.actor,
            "scan_target.delete",
            organization=organization,
            target=target,
            changes={"base_url": target.base_url, "findings": target.findings.count()},
        )
        target.delete()


def cancel_scan(principal: Principal, scan: Scan) -> Scan:
    """Ask the scan's job to stop; the agent stops within seconds and the scan becomes canceled
    when the job finishes (``signals``)."""
    require_role(principal, scan.target.project.organization, Role.MEMBER)
    if scan.state not in (ScanState.QUEUED, ScanState.RUNNING) or scan.job is None:
        raise ValidationError({"scan": ["Only a queued or running scan can be canceled."]})
    dispatch.cancel_job(principal, scan.job)
    scan.refresh_from_db()
    return scan


def add_comment(principal: Principal, finding: Finding, body: str) -> FindingComment:
    organization = finding.target.project.organization
    require_role(principal, organization, Role.MEMBER)
    body = body.strip()
    if not body or len(body) > MAX_COMMENT:
        raise ValidationError({"body": [f"A comment of 1 to {MAX_COMMENT} characters."]})
    with transaction.atomic():
        comment = FindingComment.objects.create(
            finding=finding,
            author=principal.user,
            author_label=principal.actor.label[:200],
            body=body,
        )
        audit.record(
            principal.actor,
            "finding.comment",
            organization=organization,
            target=finding,
            changes={"comment": comment.pk, "length": len(body)},
        )
    return comment
