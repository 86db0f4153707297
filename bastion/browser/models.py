"""Browser testing. For now: the messages caught by the built-in SMTP sink (the fake inbox)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class MailMessage(models.Model):
    """One message delivered to the SMTP sink, as received (raw) plus the fields we search on."""

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    mail_from = models.CharField(max_length=320, blank=True, default="")
    recipients = models.JSONField(default=list)
    # First recipient, lower-cased: the inbox the message is filed under.
    inbox = models.CharField(max_length=320, db_index=True)
    subject = models.CharField(max_length=998, blank=True, default="")
    message_id = models.CharField(max_length=998, blank=True, default="")
    size = models.PositiveIntegerField(default=0)
    raw = models.BinaryField()
    # Set when a recipient is one of a run's addresses (see MailToken): whose Inbox shows it.
    organization = models.ForeignKey(
        "core.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    run = models.ForeignKey(
        "BrowserRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.subject!r} to {self.inbox}"


# -- browser tests --------------------------------------------------------------------------
# The definitions are stored in the YAML/JSON format of ``bastion.browser.spec`` (validated by
# ``services`` before every write); runs keep ``RunResult.to_dict()`` documents.


class StoredTest(models.Model):
    """A browser test (or a module: ``import_only``) of a project."""

    project = models.ForeignKey(
        "core.Project", on_delete=models.CASCADE, related_name="browser_tests"
    )
    slug = models.CharField(max_length=60)
    name = models.CharField(max_length=200)
    definition = models.JSONField(default=dict)
    import_only = models.BooleanField(default=False)
    # Incremented by every change: a run records the version it ran.
    version = models.PositiveIntegerField(default=1)
    # Secret variables: a JSON object encrypted with bastion.core.crypto; never shown back.
    secrets_encrypted = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        "core.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["project_id", "slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "slug"], name="browser_test_slug_per_project"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Environment(models.Model):
    """Where tests run (staging, production): a base URL and variables."""

    project = models.ForeignKey(
        "core.Project", on_delete=models.CASCADE, related_name="browser_environments"
    )
    slug = models.CharField(max_length=60)
    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=500)
    variables = models.JSONField(default=dict, blank=True)
    # Secret variables: a JSON object encrypted with bastion.core.crypto; never shown back.
    secrets_encrypted = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project_id", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="browser_env_slug_per_project")
        ]

    def __str__(self) -> str:
        return self.name


class Suite(models.Model):
    project = models.ForeignKey(
        "core.Project", on_delete=models.CASCADE, related_name="browser_suites"
    )
    slug = models.CharField(max_length=60)
    name = models.CharField(max_length=200)
    tests = models.ManyToManyField(StoredTest, through="SuiteTest", related_name="suites")
    variables = models.JSONField(default=dict, blank=True)
    concurrency = models.PositiveSmallIntegerField(default=1)
    # Cron expression and time zone; empty: not scheduled.
    schedule = models.CharField(max_length=100, blank=True, default="")
    time_zone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project_id", "slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "slug"], name="browser_suite_slug_per_project"
            )
        ]

    def __str__(self) -> str:
        return self.name


class SuiteTest(models.Model):
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="entries")
    test = models.ForeignKey(StoredTest, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["suite_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["suite", "test"], name="browser_suite_test_once")
        ]


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"
    CANCELED = "canceled", "Canceled"


class BrowserRun(models.Model):
    """One execution of a test or a suite, carried out by a ``browser`` job."""

    project = models.ForeignKey(
        "core.Project", on_delete=models.CASCADE, related_name="browser_runs"
    )
    suite = models.ForeignKey(
        Suite, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    test = models.ForeignKey(
        StoredTest, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    # Test slug -> version at the time of the run (flakiness: failed then passed unchanged).
    versions = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    triggered_by = models.ForeignKey(
        "core.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"browser run {self.pk} ({self.status})"


class Baseline(models.Model):
    """The accepted screenshot for a test x environment x viewport x screenshot name."""

    test = models.ForeignKey(StoredTest, on_delete=models.CASCADE, related_name="baselines")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, null=True, blank=True, related_name="baselines"
    )
    viewport_width = models.PositiveIntegerField()
    viewport_height = models.PositiveIntegerField()
    name = models.CharField(max_length=200, default="final")
    # A name in Django's default storage, and the SHA-256 of the PNG.
    image = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    accepted_at = models.DateTimeField(default=timezone.now)
    accepted_by = models.ForeignKey(
        "core.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    run = models.ForeignKey(
        BrowserRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["test_id", "name"]

    def __str__(self) -> str:
        return f"{self.test} {self.name} {self.viewport_width}x{self.viewport_height}"


class MailToken(models.Model):
    """The unique part of one test's addresses in a run: ``run-<token>@<mail domain>`` and
    ``<label>-<token>@<mail domain>``. Files the mail they receive under the run's organization,
    and bounds what the run's agent may read."""

    token = models.CharField(max_length=32, unique=True)
    run = models.ForeignKey(BrowserRun, on_delete=models.CASCADE, related_name="mail_tokens")
    test_slug = models.CharField(max_length=60, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.token


class SuiteSchedule(models.Model):
    """When a suite runs by itself: a core ``Schedule`` (cron + time zone, kind
    ``browser.suite``) for one suite in one environment (or none)."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="schedules")
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, null=True, blank=True, related_name="schedules"
    )
    schedule = models.OneToOneField(
        "core.Schedule", on_delete=models.CASCADE, related_name="browser_suite"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["suite_id", "pk"]

    def __str__(self) -> str:
        return f"{self.suite} on {self.schedule.cron}"
