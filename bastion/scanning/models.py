"""Targets (with ownership verification), scans and findings (with states and triage)."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone as dj_timezone

from bastion.core.models import Project, User
from bastion.jobs.models import Job


def _verification_token() -> str:
    return f"bastion-verify-{secrets.token_urlsafe(24)}"


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    TEST = "test", "Test"
    DEVELOPMENT = "development", "Development"


class VerificationMethod(models.TextChoices):
    NONE = "", "Not verified"
    WELL_KNOWN_FILE = "file", "Token file under /.well-known/"
    HEADER = "header", "Response header"
    DNS = "dns", "DNS TXT record"
    ALLOW_LIST = "allow-list", "Administrator allow-list"


class Target(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="scan_targets")
    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=2000)
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.STAGING
    )
    include = models.JSONField(default=list, blank=True)
    exclude = models.JSONField(default=list, blank=True)
    extra_hosts = models.JSONField(default=list, blank=True)
    rate_limit = models.FloatField(default=0.0)  # requests per second, 0 = profile default
    concurrency = models.PositiveSmallIntegerField(default=0)  # 0 = profile default
    # Authentication settings (JSON), encrypted with bastion.core.crypto; never logged.
    auth_encrypted = models.TextField(blank=True, default="")
    verification_token = models.CharField(max_length=100, default=_verification_token)
    verification_method = models.CharField(
        max_length=20, choices=VerificationMethod.choices, blank=True, default=""
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="scanning_target_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url})"


class ScanState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class Scan(models.Model):
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="scans")
    profile = models.CharField(max_length=50, default="lightning")
    state = models.CharField(max_length=20, choices=ScanState.choices, default=ScanState.QUEUED)
    job = models.OneToOneField(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="scan"
    )
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requests_sent = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # Per-check outcomes: [{"name", "status", "message", "duration_s"}]
    checks = models.JSONField(default=list, blank=True)
    # Findings this scan reported, by severity, counted when its result is stored (reports'
    # trend; see scanning.reports.tally).
    severity_counts = models.JSONField(default=dict, blank=True)
    # A retest of one finding: its check only, on its URL and parameter (``retest.py``).
    retest_of = models.ForeignKey(
        "Finding", on_delete=models.SET_NULL, null=True, blank=True, related_name="retests"
    )

    def __str__(self) -> str:
        return f"{self.profile} scan #{self.pk} of {self.target.name}"


class FindingState(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    FIXED = "fixed", "Fixed"
    REOPENED = "reopened", "Reopened"


class Triage(models.TextChoices):
    NONE = "", "Not triaged"
    FALSE_POSITIVE = "false-positive", "False positive"
    ACCEPTED_RISK = "accepted-risk", "Accepted risk"


class FindingSource(models.TextChoices):
    SCAN = "scan", "Scan"
    MANUAL = "manual", "Manual (entered by a person)"


class Finding(models.Model):
    """One issue on one target, deduplicated across scans by its versioned fingerprint."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="findings")
    fingerprint = models.CharField(max_length=120)
    fingerprint_version = models.CharField(max_length=20, default="finding:v1")
    type = models.CharField(max_length=60, db_index=True)
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=10, db_index=True)
    cwe = models.CharField(max_length=20, blank=True, default="")
    owasp = models.CharField(max_length=100, blank=True, default="")
    confidence = models.CharField(max_length=20, default="firm")
    url = models.TextField()
    method = models.CharField(max_length=20, default="GET")
    parameter = models.CharField(max_length=500, blank=True, default="")
    evidence = models.TextField(blank=True, default="")
    request = models.TextField(blank=True, default="")
    response = models.TextField(blank=True, default="")
    remediation = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    check_name = models.CharField(max_length=60, blank=True, default="")
    state = models.CharField(max_length=10, choices=FindingState.choices, default=FindingState.NEW)
    triage = models.CharField(max_length=20, choices=Triage.choices, blank=True, default="")
    triage_reason = models.TextField(blank=True, default="")
    accepted_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    first_seen_scan = models.ForeignKey(
        Scan, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    last_seen_scan = models.ForeignKey(Scan, on_delete=models.SET_NULL, null=True, related_name="+")
    first_seen_at = models.DateTimeField(default=dj_timezone.now)
    last_seen_at = models.DateTimeField(default=dj_timezone.now)
    fixed_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=FindingSource.choices, default="scan")
    reported_by = models.CharField(max_length=200, blank=True, default="")  # manual findings
    # When the last overdue alert went out (at most one a day per finding, ``overdue.py``).
    overdue_alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target", "fingerprint"], name="scanning_finding_unique_fingerprint"
            )
        ]
        indexes = [models.Index(fields=["target", "state"])]

    def __str__(self) -> str:
        return f"{self.title} at {self.url}"


class FindingComment(models.Model):
    """A note on a finding by a person (triage discussion, retest notes)."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    author_label = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField()
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"comment #{self.pk} on finding #{self.finding_id}"


def _attachment_path(instance: FindingAttachment, filename: str) -> str:
    return f"scanning/findings/{instance.finding_id}/{secrets.token_hex(8)}"


class FindingAttachment(models.Model):
    """Evidence a person attached to a finding (screenshots, request dumps...), stored through
    Django's storage API under a random name; served as a download (``attachments.py``)."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=300)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.name} on finding #{self.finding_id}"


class ScanSchedule(models.Model):
    """Scans of one target with one profile, started by a core ``Schedule`` (kind ``scan``):
    the core row holds the cron expression, time zone and next run; this one what to run."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="schedules")
    schedule = models.OneToOneField(
        "core.Schedule", on_delete=models.CASCADE, related_name="scan_schedule"
    )
    profile = models.CharField(max_length=50, default="lightning")
    cluster = models.ForeignKey("jobs.Cluster", on_delete=models.CASCADE, related_name="+")
    queue = models.CharField(max_length=100, default="default")
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"{self.profile} schedule of {self.target.name}"


class ReportFormat(models.TextChoices):
    PDF = "pdf", "PDF"
    JSON = "json", "JSON"
    CSV = "csv", "CSV"
    SARIF = "sarif", "SARIF 2.1.0"


class ReportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Rendering"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ScanReport(models.Model):
    """A report of one scan, or of a target's latest state when ``scan`` is empty; rendered by
    a server-side task and stored through Django's storage API."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="reports")
    scan = models.ForeignKey(
        Scan, on_delete=models.CASCADE, null=True, blank=True, related_name="reports"
    )
    format = models.CharField(max_length=10, choices=ReportFormat.choices)
    state = models.CharField(max_length=10, choices=ReportState.choices, default=ReportState.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    stage = models.CharField(max_length=100, blank=True, default="")
    file = models.FileField(upload_to="scanning/reports/%Y/%m/", blank=True, default="")
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    requested_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["target", "-created_at"])]

    def __str__(self) -> str:
        subject = f"scan #{self.scan_id}" if self.scan_id else f"target {self.target.name}"
        return f"{self.get_format_display()} report of {subject}"
