"""Named actions of the errors module. Each runs in one transaction and audits itself."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from bastion.core import audit, crypto
from bastion.core.access import Principal, require_role
from bastion.core.models import Project, Role
from bastion.errors import fingerprinting, lifecycle, rules
from bastion.errors.ingest import hash_public_key, key_cache
from bastion.errors.models import (
    Deploy,
    DsnKey,
    IgnoreRule,
    Issue,
    IssueReview,
    IssueStatus,
    IssueView,
    ProjectErrorSettings,
    Resolution,
)
from bastion.errors.rules import rule_cache

MAX_IGNORE_COUNT = 1_000_000_000
MAX_COMMENT = 5000


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


def _lifecycle_state(issue: Issue) -> dict[str, object]:
    return {
        "status": issue.status,
        "resolution": issue.resolution,
        "ignore_until": issue.ignore_until.isoformat() if issue.ignore_until else None,
        "ignore_until_events": issue.ignore_until_events,
        "ignore_until_users": issue.ignore_until_users,
    }


def _change_status(
    principal: Principal, issue: Issue, action: str, change: lifecycle.Change
) -> Issue:
    """Lock the issue, apply ``change`` to it, save and audit ``errors.issue.<action>``."""
    organization = issue.project.organization
    require_role(principal, organization, Role.MEMBER)
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue.pk)
        before = _lifecycle_state(locked)
        lifecycle.clear_lifecycle(locked)
        change(locked)
        locked.regressed = False
        locked.status_changed_at = timezone.now()
        locked.save(
            update_fields=[
                "status",
                "status_changed_at",
                "resolution",
                "ignore_until",
                "ignore_until_events",
                "ignore_until_users",
                "regressed",
            ]
        )
        audit.record(
            principal.actor,
            f"errors.issue.{action}",
            organization=organization,
            target=locked,
            changes=audit.diff(before, _lifecycle_state(locked)),
        )
    return locked


def set_issue_status(principal: Principal, issue: Issue, status: str) -> Issue:
    """Resolve (now), ignore (forever) or reopen."""
    if status not in IssueStatus.values:
        raise ValidationError({"status": [f"One of {', '.join(IssueStatus.values)}."]})
    if status == IssueStatus.RESOLVED:
        return resolve_issue(principal, issue)
    if status == IssueStatus.IGNORED:
        return ignore_issue(principal, issue)

    def reopen(locked: Issue) -> None:
        locked.status = IssueStatus.UNRESOLVED

    return _change_status(principal, issue, "unresolve", reopen)


MAX_BULK = 100


def bulk_set_status(principal: Principal, issues: list[Issue], status: str) -> list[Issue]:
    """Resolve, ignore or reopen several issues at once: all or none, each change audited."""
    if not issues or len(issues) > MAX_BULK:
        raise ValidationError({"issues": [f"Choose between 1 and {MAX_BULK} issues."]})
    with transaction.atomic():
        return [set_issue_status(principal, issue, status) for issue in issues]


def resolve_issue(principal: Principal, issue: Issue, *, in_next_release: bool = False) -> Issue:
    """Resolved now (any new event regresses it) or in the next release (only an event of a
    release the issue has not seen yet does)."""

    def resolve(locked: Issue) -> None:
        locked.status = IssueStatus.RESOLVED
        locked.resolution = Resolution.NEXT_RELEASE if in_next_release else Resolution.NOW

    return _change_status(principal, issue, "resolved", resolve)


def ignore_issue(
    principal: Principal,
    issue: Issue,
    *,
    until: datetime | None = None,
    more_events: int | None = None,
    more_users: int | None = None,
) -> Issue:
    """Ignored forever, or until a date, until N more events or N more affected users
    (whichever comes first)."""
    for name, value in (("more_events", more_events), ("more_users", more_users)):
        if value is not None and not 1 <= value <= MAX_IGNORE_COUNT:
            raise ValidationError({name: [f"Between 1 and {MAX_IGNORE_COUNT}."]})
    if until is not None:
        if until.tzinfo is None:
            raise ValidationError({"until": ["A date with a time zone."]})
        if until <= timezone.now():
            raise ValidationError({"until": ["A date in the future."]})

    def ignore(locked: Issue) -> None:
        locked.status = IssueStatus.IGNORED
        locked.ignore_until = until
        if more_events is not None:
            locked.ignore_until_events = locked.event_count + more_events
        if more_users is not None:
            locked.ignore_until_users = locked.users_affected + more_users

    return _change_status(principal, issue, "ignored", ignore)


# --- review audit -------------------------------------------------------------------------------


def record_view(principal: Principal, issue: Issue) -> IssueView | None:
    """Note that a user opened the issue (the raw evidence of the review audit; an API token
    reading it is no person's view)."""
    require_role(principal, issue.project.organization, Role.VIEWER)
    if principal.user is None:
        return None
    return IssueView.objects.create(issue=issue, user=principal.user)


def mark_reviewed(principal: Principal, issue: Issue, comment: str = "") -> IssueReview:
    organization = issue.project.organization
    require_role(principal, organization, Role.MEMBER)
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise ValidationError({"comment": [f"At most {MAX_COMMENT} characters."]})
    with transaction.atomic():
        user = principal.actor.user
        review = IssueReview.objects.create(
            issue=issue,
            user=user,
            reviewer=user.username if user is not None else principal.actor.label[:200],
            comment=comment,
        )
        audit.record(
            principal.actor,
            "errors.issue.reviewed",
            organization=organization,
            target=issue,
            changes={"comment": comment},
        )
    return review


# --- ignore rules -------------------------------------------------------------------------------


def _rules_changed() -> None:
    rule_cache.clear()  # now for this thread, and again once others can see the change
    transaction.on_commit(rule_cache.clear)


def create_ignore_rule(
    principal: Principal, project: Project, *, kind: str, value: str, reason: str
) -> IgnoreRule:
    require_role(principal, project.organization, Role.ADMIN)
    value = rules.validate(kind, value)
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise ValidationError({"reason": ["Say why (at most 500 characters)."]})
    with transaction.atomic():
        rule = IgnoreRule.objects.create(
            project=project,
            kind=kind,
            value=value,
            reason=reason,
            created_by=principal.actor.user,
            author=principal.actor.label[:200],
        )
        _rules_changed()
        audit.record(
            principal.actor,
            "errors.ignore_rule.create",
            organization=project.organization,
            target=rule,
            changes={"project": str(project), "kind": kind, "value": value, "reason": reason},
        )
    return rule


def set_ignore_rule_enabled(principal: Principal, rule: IgnoreRule, enabled: bool) -> IgnoreRule:
    """Disable (or re-enable) a rule; rules are never deleted, so what they suppressed stays
    explained."""
    organization = rule.project.organization
    require_role(principal, organization, Role.ADMIN)
    with transaction.atomic():
        before = rule.enabled
        rule.enabled = enabled
        rule.save(update_fields=["enabled"])
        _rules_changed()
        audit.record(
            principal.actor,
            "errors.ignore_rule.enable" if enabled else "errors.ignore_rule.disable",
            organization=organization,
            target=rule,
            changes={"enabled": {"before": before, "after": enabled}},
        )
    return rule


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


MAX_RELEASE = 200
MAX_ENVIRONMENT = 64


def set_fingerprint_rules(principal: Principal, project: Project, text: str) -> str:
    """Replace the project's fingerprint rules (validated; ValidationError names the line)."""
    require_role(principal, project.organization, Role.ADMIN)
    cleaned = fingerprinting.validate(text)
    with transaction.atomic():
        current, _ = ProjectErrorSettings.objects.select_for_update().get_or_create(project=project)
        before = current.fingerprint_rules
        current.fingerprint_rules = cleaned
        current.save(update_fields=["fingerprint_rules"])
        key_cache.clear()  # the cached key carries the project settings
        transaction.on_commit(key_cache.clear)
        audit.record(
            principal.actor,
            "errors.fingerprint_rules.update",
            organization=project.organization,
            target=project,
            changes=audit.diff({"rules": before}, {"rules": cleaned}),
        )
    return cleaned


def record_deploy(
    principal: Principal,
    project: Project,
    *,
    release: str,
    environment: str,
    source: str = "",
    url: str = "",
) -> Deploy:
    """A release went out to an environment (a pipeline's ``release:`` step, or the API)."""
    require_role(principal, project.organization, Role.MEMBER)
    release, environment = release.strip(), environment.strip()
    if not release or len(release) > MAX_RELEASE:
        raise ValidationError({"release": [f"A release of 1 to {MAX_RELEASE} characters."]})
    if not environment or len(environment) > MAX_ENVIRONMENT or "/" in environment:
        raise ValidationError(
            {"environment": [f"An environment of 1 to {MAX_ENVIRONMENT} characters, no '/'."]}
        )
    with transaction.atomic():
        deploy = Deploy.objects.create(
            project=project,
            release=release,
            environment=environment,
            source=source[:200],
            url=url[:500],
            created_by=principal.actor.label[:200],
        )
        audit.record(
            principal.actor,
            "errors.deploy",
            organization=project.organization,
            target=deploy,
            changes={"release": release, "environment": environment, "source": source[:200]},
        )
    return deploy
