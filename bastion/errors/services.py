"""Named actions of the errors module. Each runs in one transaction and audits itself."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from bastion.core import audit, crypto
from bastion.core.access import Principal, require_role
from bastion.core.models import Project, Role
from bastion.errors.ingest import hash_public_key, key_cache
from bastion.errors.models import DsnKey, Issue, IssueStatus, ProjectErrorSettings


def public_key_of(key: DsnKey) -> str:
    return crypto.decrypt(key.public_key_encrypted)


def dsn_of(key: DsnKey, base_url: str | None = None) -> str:
    """``http://<public_key>@<host>:<port>[/<path>]/<project_id>`` for this server."""
    parts = urlsplit(base_url or settings.CONFIG.public_url)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{public_key_of(key)}@{parts.netloc}{path}/{key.project_id}"


def create_dsn_key(
    principal: Principal, project: Project, label: str = "Default", rate_limit_per_minute: int = 0
) -> DsnKey:
    require_role(principal, project.organization, Role.ADMIN)
    public_key = secrets.token_hex(16)
    key = DsnKey(
        project=project,
        label=label[:100] or "Default",
        public_key_hash=hash_public_key(public_key),
        public_key_encrypted=crypto.encrypt(public_key),
        prefix=public_key[:8],
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=principal.actor.user if principal.actor.user is not None else None,
    )
    with transaction.atomic():
        key.save()
        transaction.on_commit(key_cache.clear)  # no stale "unknown key" answer
        audit.record(
            principal.actor,
            "errors.dsn_key.create",
            organization=project.organization,
            target=key,
            changes={"project": str(project), "label": key.label},
        )
    return key


def default_dsn_key(principal: Principal, project: Project) -> DsnKey:
    """The project's first enabled key, created (audited) when it has none."""
    key = DsnKey.objects.filter(project=project, enabled=True).order_by("pk").first()
    return key if key is not None else create_dsn_key(principal, project)


def update_dsn_key(
    principal: Principal,
    key: DsnKey,
    *,
    enabled: bool | None = None,
    rate_limit_per_minute: int | None = None,
) -> DsnKey:
    organization = key.project.organization
    require_role(principal, organization, Role.ADMIN)
    before = {"enabled": key.enabled, "rate_limit_per_minute": key.rate_limit_per_minute}
    if enabled is not None:
        key.enabled = enabled
    if rate_limit_per_minute is not None:
        if rate_limit_per_minute < 0:
            raise ValidationError({"rate_limit_per_minute": ["Must be 0 (unlimited) or more."]})
        key.rate_limit_per_minute = rate_limit_per_minute
    after = {"enabled": key.enabled, "rate_limit_per_minute": key.rate_limit_per_minute}
    with transaction.atomic():
        key.save(update_fields=["enabled", "rate_limit_per_minute"])
        key_cache.clear()  # now for this thread, and again once others can see the change
        transaction.on_commit(key_cache.clear)
        audit.record(
            principal.actor,
            "errors.dsn_key.update",
            organization=organization,
            target=key,
            changes=audit.diff(before, after),
        )
    return key


def set_issue_status(principal: Principal, issue: Issue, status: str) -> Issue:
    if status not in IssueStatus.values:
        raise ValidationError({"status": [f"One of {', '.join(IssueStatus.values)}."]})
    organization = issue.project.organization
    require_role(principal, organization, Role.MEMBER)
    before = issue.status
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue.pk)
        before = locked.status
        locked.status = status
        locked.status_changed_at = timezone.now()
        locked.save(update_fields=["status", "status_changed_at"])
        audit.record(
            principal.actor,
            f"errors.issue.{status if status != IssueStatus.UNRESOLVED else 'unresolve'}",
            organization=organization,
            target=locked,
            changes={"status": {"before": before, "after": status}},
        )
    return locked


def update_scrub_settings(
    principal: Principal,
    project: Project,
    *,
    scrub_defaults: bool,
    scrub_fields: list[str],
    scrub_patterns: list[str],
    safe_fields: list[str],
) -> ProjectErrorSettings:
    require_role(principal, project.organization, Role.ADMIN)
    for pattern in scrub_patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValidationError({"scrub_patterns": [f"{pattern!r}: {exc}"]}) from exc
    with transaction.atomic():
        current, _ = ProjectErrorSettings.objects.select_for_update().get_or_create(project=project)
        before = {
            "scrub_defaults": current.scrub_defaults,
            "scrub_fields": current.scrub_fields,
            "scrub_patterns": current.scrub_patterns,
            "safe_fields": current.safe_fields,
        }
        current.scrub_defaults = scrub_defaults
        current.scrub_fields = scrub_fields
        current.scrub_patterns = scrub_patterns
        current.safe_fields = safe_fields
        current.save()
        key_cache.clear()  # the cached key carries the project settings
        transaction.on_commit(key_cache.clear)
        after = {
            "scrub_defaults": scrub_defaults,
            "scrub_fields": scrub_fields,
            "scrub_patterns": scrub_patterns,
            "safe_fields": safe_fields,
        }
        audit.record(
            principal.actor,
            "errors.scrubbing.update",
            organization=project.organization,
            target=project,
            changes=audit.diff(before, after),
        )
    return current
