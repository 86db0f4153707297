"""Error tracking: DSN keys, issues (grouped events), events, attachments and item counters.

The ingest hot path writes one event row and updates its issue row in one transaction (see
``bastion.errors.ingest``); everything an issue shows in a list is denormalized on it so that
list pages never aggregate over events.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone as dj_timezone

from bastion.core.models import Project, User


class DsnKey(models.Model):
    """A client key of a project's DSN. The key is a secret only in the weak sense (browser
    SDKs embed it), but it is still stored encrypted, looked up by its SHA-256."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dsn_keys")
    label = models.CharField(max_length=100, default="Default")
    public_key_hash = models.CharField(max_length=64, unique=True)
    public_key_encrypted = models.TextField()
    prefix = models.CharField(max_length=8)
    enabled = models.BooleanField(default=True)
    # Accepted events per minute for this key; 0 means unlimited.
    rate_limit_per_minute = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.label} ({self.prefix}…)"


class ProjectErrorSettings(models.Model):
    """Per-project processing settings: what server-side scrubbing removes before storage."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="error_settings")
    scrub_defaults = models.BooleanField(default=True)
    # Extra key names (substring, case-insensitive) whose values are replaced.
    scrub_fields = models.JSONField(default=list, blank=True)
    # Extra regular expressions; matching parts of any string value are replaced.
    scrub_patterns = models.JSONField(default=list, blank=True)
    # Key names never scrubbed even if a default rule matches them.
    safe_fields = models.JSONField(default=list, blank=True)
    # Fingerprint rules, one a line (syntax in ``bastion.errors.fingerprinting``).
    fingerprint_rules = models.TextField(blank=True, default="")


class IssueStatus(models.TextChoices):
    UNRESOLVED = "unresolved", "Unresolved"
    RESOLVED = "resolved", "Resolved"
    IGNORED = "ignored", "Ignored"


class Resolution(models.TextChoices):
    NONE = "", "None"
    NOW = "now", "Resolved"
    NEXT_RELEASE = "next_release", "Resolved in next release"


class Issue(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="issues")
    grouping_version = models.CharField(max_length=20)
    grouping_hash = models.CharField(max_length=64)
    title = models.CharField(max_length=500)
    culprit = models.CharField(max_length=500, blank=True, default="")
    level = models.CharField(max_length=20, default="error")
    status = models.CharField(
        max_length=20, choices=IssueStatus.choices, default=IssueStatus.UNRESOLVED
    )
    event_count = models.PositiveBigIntegerField(default=0)
    users_affected = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    releases = models.JSONField(default=list, blank=True)
    environments = models.JSONField(default=list, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Lifecycle (see ``bastion.errors.lifecycle``): how a resolved issue was resolved, until
    # when an ignored one stays ignored, and whether it came back after a resolution.
    resolution = models.CharField(
        max_length=20, choices=Resolution.choices, blank=True, default=Resolution.NONE
    )
    ignore_until = models.DateTimeField(null=True, blank=True)
    # Absolute thresholds: the issue is unignored once event_count / users_affected reach them.
    ignore_until_events = models.PositiveBigIntegerField(null=True, blank=True)
    ignore_until_users = models.PositiveBigIntegerField(null=True, blank=True)
    regressed = models.BooleanField(default=False)
    regressed_at = models.DateTimeField(null=True, blank=True)
    # Events matched by an ignore rule (counted in ``event_count`` too): an issue whose events
    # so far were all suppressed is still "new" to alerts at its first unsuppressed event.
    suppressed_count = models.PositiveBigIntegerField(default=0)
    # A member of the project's organization who looks after the issue (see ``assign_issues``).
    assignee = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "grouping_version", "grouping_hash"], name="uniq_issue_hash"
            )
        ]
        indexes = [
            models.Index(fields=["project", "status", "-last_seen"], name="issue_list"),
            models.Index(fields=["project", "-last_seen"], name="issue_recent"),
        ]

    def __str__(self) -> str:
        return self.title[:100]


class IssueUser(models.Model):
    """One distinct affected user of an issue (a SHA-256 of the user's identity, not the PII)."""

    # No index of its own: the unique (issue, user_hash) index starts with it.
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="+", db_index=False)
    user_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issue", "user_hash"], name="uniq_issue_user")
        ]


class IssueTagValue(models.Model):
    """How many events of an issue carried a tag value (environment, release, level and the
    SDK's tags): the issue page's tag distributions, counted in the ingest batch by one upsert
    instead of aggregated over the events when the page is read."""

    # No index of its own: the unique (issue, key, value) index starts with it.
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=200)
    value = models.CharField(max_length=200)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issue", "key", "value"], name="uniq_issue_tag_value")
        ]
        # The issues list's ``key:value`` search finds issues by tag value.
        indexes = [models.Index(fields=["key", "value"], name="issue_tag_by_value")]


class Event(models.Model):
    """One accepted error event, normalized and scrubbed (``data``).

    Every index here is written by each ingested event, so there are only the ones reads need:
    the project and issue foreign keys have none of their own (the unique (project, event_id)
    and the (issue, -received_at) indexes start with them), and the ignore rule's is partial
    (only suppressed events, few, are in it).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    issue = models.ForeignKey(
        Issue, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=dj_timezone.now)
    level = models.CharField(max_length=20, default="error")
    title = models.CharField(max_length=500)
    release = models.CharField(max_length=200, blank=True, default="")
    environment = models.CharField(max_length=64, blank=True, default="")
    grouping_version = models.CharField(max_length=20)
    grouping_hash = models.CharField(max_length=64)
    data = models.JSONField()
    # The ignore rule this event matched: still counted on its issue, but it changes no
    # issue status and raises no alert.
    suppressed_by = models.ForeignKey(
        "IgnoreRule",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "event_id"], name="uniq_event_id")
        ]
        indexes = [
            models.Index(fields=["issue", "-received_at"], name="event_by_issue"),
            models.Index(
                fields=["suppressed_by"],
                condition=models.Q(suppressed_by__isnull=False),
                name="event_suppressed",
            ),
        ]

    def __str__(self) -> str:
        return self.event_id.hex


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"errors/attachments/{instance.project_id}/{instance.event_id_hex}/{filename}"


class Attachment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attachments")
    event_id_hex = models.CharField(max_length=32)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True, default="")
    attachment_type = models.CharField(max_length=50, default="event.attachment")
    size = models.PositiveBigIntegerField()
    file = models.FileField(upload_to=attachment_path, max_length=500)
    created_at = models.DateTimeField(default=dj_timezone.now)


class ItemCount(models.Model):
    """Accepted envelope items per project, day and item type (sessions, transactions, ...)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    item_type = models.CharField(max_length=40)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "day", "item_type"], name="uniq_item_count")
        ]


class IssueView(models.Model):
    """One opening of an issue page by a user (the review audit's raw evidence)."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="views")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    viewed_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["issue", "viewed_at"], name="issue_view_by_issue")]


class IssueReview(models.Model):
    """A user's "Mark reviewed" of an issue, with an optional comment."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    # Who, as the audit log names them (a user, or an API token acting for one organization).
    reviewer = models.CharField(max_length=200, default="")
    reviewed_at = models.DateTimeField(default=dj_timezone.now)
    comment = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["issue", "reviewed_at"], name="issue_review_by_issue")]


class IssueComment(models.Model):
    """A member's plain-text note on an issue (shown escaped, newlines kept)."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    # Who, as the audit log names them (a user, or an API token acting for one organization).
    author_label = models.CharField(max_length=200, default="")
    body = models.TextField()
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["issue", "created_at"], name="issue_comment_by_issue")]


class RuleKind(models.TextChoices):
    EXCEPTION_TYPE = "exception_type", "Exception type"
    MESSAGE_REGEX = "message_regex", "Message regex"
    TAG = "tag", "Tag (key=value)"
    TRANSACTION = "transaction", "Transaction (glob)"
    URL = "url", "Request URL (glob)"


class IgnoreRule(models.Model):
    """A project rule: matching events are stored and counted but marked suppressed."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ignore_rules")
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    value = models.CharField(max_length=500)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who, as the audit log names them (a user, or an API token acting for one organization).
    author = models.CharField(max_length=200, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)
    enabled = models.BooleanField(default=True)
    match_count = models.PositiveBigIntegerField(default=0)
    last_matched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"[:300]


class Deploy(models.Model):
    """A release deployed to an environment: recorded by a pipeline's ``release:`` step (or
    the API). "Resolved in next release" and the issue pages read these."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="deploys")
    release = models.CharField(max_length=200)
    environment = models.CharField(max_length=64)
    deployed_at = models.DateTimeField(default=dj_timezone.now)
    # Where it came from: a label such as "acme/app #12" and a link to it (a path in Bastion).
    source = models.CharField(max_length=200, blank=True, default="")
    url = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["project", "-deployed_at"], name="deploy_recent")]

    def __str__(self) -> str:
        return f"{self.release} to {self.environment}"


# Alerts and the review digest live in their own module; imported here so Django registers them.
from bastion.errors.alert_models import AlertSettings, AlertState, DigestSettings  # noqa: E402, F401
