"""Tenancy, accounts, API tokens, the append-only audit log and schedules."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone as dj_timezone

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
)


class User(AbstractUser):
    email = models.EmailField(unique=True)
    # TOTP secret, encrypted with bastion.core.crypto; empty when two-factor is off.
    totp_secret_encrypted = models.TextField(blank=True, default="")
    totp_enabled = models.BooleanField(default=False)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ROLE_RANK: dict[str, int] = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[minimum]


class Organization(models.Model):
    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} as {self.role}"


class Project(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    slug = models.CharField(max_length=50, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="uniq_project_slug")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class Invitation(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > dj_timezone.now()
        )


class ApiToken(models.Model):
    """An organization-scoped API token. Only a SHA-256 of the secret is stored."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > dj_timezone.now()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class LoginAttempt(models.Model):
    """Failed and successful logins, for throttling and for the audit trail of access."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    at = models.DateTimeField(default=dj_timezone.now, db_index=True)


class AppendOnlyQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("the audit log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is append-only")


class AuditEvent(models.Model):
    """One state change. Rows are chained by hash; nothing updates or deletes them."""

    seq = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, default="")
    object_id = models.CharField(max_length=100, blank=True, default="")
    object_repr = models.CharField(max_length=300, blank=True, default="")
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["organization", "-seq"], name="audit_org_seq")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is append-only")


class Schedule(models.Model):
    """A cron expression in a time zone that fires a registered kind of work.

    Other apps register a handler per ``kind`` (see bastion.core.schedules); the scheduler
    calls it once per due run, and a run missed during downtime fires once, not N times.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="schedules"
    )
    kind = models.CharField(max_length=50)
    object_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True, default="")
    cron = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)


class NotificationChannel(models.Model):
    """Where an organization's alerts go: email recipients, a signed webhook or a Slack-compatible hook.

    The target (addresses or URL — a Slack hook URL is itself a credential) and the webhook's
    signing secret are stored encrypted; ``target_hint`` is the redacted form pages show.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook (HMAC-signed JSON)"
        SLACK = "slack", "Slack-compatible webhook"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notification_channels"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target_encrypted = models.TextField()
    target_hint = models.CharField(max_length=300)
    secret_encrypted = models.TextField(blank=True, default="")
    # Glob patterns over message topics, e.g. ["errors.*", "scanning.finding.overdue"].
    topics = models.JSONField(default=list)
    # Empty means every project of the organization.
    projects = models.ManyToManyField(Project, blank=True, related_name="+")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_channel_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class NotificationDelivery(models.Model):
    """One message for one channel: written in the transaction that caused it, sent after commit."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed (rate limit)"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # A channel's message; or, with ``recipient`` instead, an email to one person (a message
    # meant for them alone, such as "an issue was assigned to you").
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, null=True, related_name="deliveries"
    )
    recipient = models.ForeignKey(User, on_delete=models.CASCADE, null=True, related_name="+")
    topic = models.CharField(max_length=100)
    subject = models.CharField(max_length=300)
    text = models.TextField(blank=True, default="")
    url = models.CharField(max_length=1000, blank=True, default="")
    data = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # Repeats of this message swallowed by the dedupe window (an error storm yields one alert).
    suppressed_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["channel", "dedupe_key", "created_at"], name="delivery_dedupe"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_retry"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel__isnull=False) | models.Q(recipient__isnull=False),
                name="delivery_has_destination",
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} → {self.destination} ({self.status})"

    @property
    def destination(self) -> str:
        """The channel's name, or ``email to <username>`` for a personal message."""
        if self.channel is not None:
            return self.channel.name
        return f"email to {self.recipient.username}" if self.recipient else "nobody"
