"""Pipelines, their builds, and the steps and jobs of each build.

A build keeps the pipeline file it started from (``pipeline_yaml``) and its environment, so the
scheduler can always re-derive every step's definition; ``BuildStep`` rows hold the runtime state
of each step and ``BuildJob`` rows link a step's jobs (matrix, parallel, retries) to ``jobs.Job``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from bastion.core.models import Organization, User, slug_validator
from bastion.jobs.models import Cluster, Job


class Pipeline(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="pipelines"
    )
    slug = models.CharField(max_length=50, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="pipelines")
    yaml = models.TextField()
    repository = models.CharField(max_length=500, blank=True, default="")
    default_branch = models.CharField(max_length=200, default="main")
    # The secret GitHub signs webhooks with / GitLab sends: encrypted (bastion.core.crypto);
    # empty when webhooks are off.
    webhook_secret = models.TextField(blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="uniq_pipeline_slug")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class PipelineSchedule(models.Model):
    """When a pipeline builds by itself: a core ``Schedule`` (cron + time zone, kind
    ``pipelines.build``, enabled flag) and what each scheduled build gets (Buildkite's
    "Scheduled build": branch, commit, message and env)."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="schedules")
    schedule = models.OneToOneField(
        "core.Schedule", on_delete=models.CASCADE, related_name="pipeline_schedule"
    )
    label = models.CharField(max_length=200, blank=True, default="")
    branch = models.CharField(max_length=200)
    commit = models.CharField(max_length=100, default="HEAD")
    message = models.CharField(max_length=500, blank=True, default="")
    env = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pipeline_id", "pk"]

    def __str__(self) -> str:
        return f"{self.pipeline} on {self.schedule.cron}"


class BuildState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    BLOCKED = "blocked", "Blocked"
    FAILING = "failing", "Failing"
    CANCELING = "canceling", "Canceling"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    NOT_RUN = "not_run", "Not run"


BUILD_FINISHED = (BuildState.PASSED, BuildState.FAILED, BuildState.CANCELED, BuildState.NOT_RUN)


class Build(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="builds")
    number = models.PositiveIntegerField()
    branch = models.CharField(max_length=200)
    commit = models.CharField(max_length=100, default="HEAD")
    message = models.TextField(blank=True, default="")
    env = models.JSONField(default=dict, blank=True)
    meta_data = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, default="api")
    pipeline_yaml = models.TextField()
    state = models.CharField(
        max_length=20, choices=BuildState.choices, default=BuildState.SCHEDULED, db_index=True
    )
    created_by = models.CharField(max_length=200, blank=True, default="")
    # The person who started it (``build.creator.*`` in ``if``): the user in the UI, an API
    # token's creator, a triggering build's creator; none for webhooks, schedules and the CLI.
    creator = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the source said about the build, for ``if`` (``build.author.*``, the pull request's
    # ``draft``/``labels``/``repository``): ``{"author": {...}, "pull_request": {...}}``.
    origin = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # The cron schedule that started this build (source "schedule"), if any.
    schedule = models.ForeignKey(
        "PipelineSchedule", on_delete=models.SET_NULL, null=True, blank=True, related_name="builds"
    )
    # The trigger step (of another build) that created this build, if any.
    triggered_from = models.ForeignKey(
        "BuildStep", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "number"], name="uniq_build_number")
        ]
        indexes = [models.Index(fields=["pipeline", "-number"], name="build_recent")]

    @property
    def is_finished(self) -> bool:
        return self.state in BUILD_FINISHED

    def __str__(self) -> str:
        return f"{self.pipeline_id}#{self.number}"


class StepState(models.TextChoices):
    WAITING = "waiting", "Waiting"
    RUNNING = "running", "Running"
    BLOCKED = "blocked", "Blocked"
    PASSED = "passed", "Passed"
    SOFT_FAILED = "soft_failed", "Soft failed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    SKIPPED = "skipped", "Skipped"
    # Never ran because a step it depends on failed (Buildkite's waiting_failed).
    BROKEN = "broken", "Not run"


STEP_FINISHED = (
    StepState.PASSED,
    StepState.SOFT_FAILED,
    StepState.FAILED,
    StepState.CANCELED,
    StepState.SKIPPED,
    StepState.BROKEN,
)
# What lets dependents run without `allow_failure`.
STEP_OK = (StepState.PASSED, StepState.SOFT_FAILED, StepState.SKIPPED)


class BuildStep(models.Model):
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=100)
    type = models.CharField(max_length=20)
    label = models.CharField(max_length=300, blank=True, default="")
    position = models.PositiveIntegerField()
    group_key = models.CharField(max_length=100, blank=True, default="")
    # [{"key": ..., "allow_failure": bool}], resolved at build creation.
    needs = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=20, choices=StepState.choices, default=StepState.WAITING)
    skip_reason = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    unblocked_by = models.CharField(max_length=200, blank=True, default="")
    unblocked_at = models.DateTimeField(null=True, blank=True)
    triggered_build = models.ForeignKey(
        Build, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build", "key"], name="uniq_build_step")]
        ordering = ["position"]

    @property
    def is_finished(self) -> bool:
        return self.state in STEP_FINISHED

    def __str__(self) -> str:
        return f"{self.build} {self.key}"


class BuildJob(models.Model):
    """One run of a command step: a matrix combination or parallel index, one attempt.

    ``job`` is empty while the job waits for a concurrency slot; the scheduler creates the
    ``jobs.Job`` (origin ``pipelines.job:<id>``) when one frees up.
    """

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="jobs")
    step = models.ForeignKey(BuildStep, on_delete=models.CASCADE, related_name="jobs")
    index = models.PositiveIntegerField(default=0)
    matrix = models.JSONField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    job = models.OneToOneField(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="build_job"
    )
    concurrency_group = models.CharField(max_length=200, blank=True, default="", db_index=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    # A later attempt replaced this one (automatic or manual retry).
    superseded = models.BooleanField(default=False)
    retried_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["build", "step"], name="buildjob_step")]

    def __str__(self) -> str:
        return f"{self.step} #{self.index} attempt {self.attempt}"


class AnnotationStyle(models.TextChoices):
    DEFAULT = "default", "Default"
    INFO = "info", "Info"
    SUCCESS = "success", "Success"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class Annotation(models.Model):
    """A note a job wrote on its build (``bastion annotate``), one per context (Buildkite's)."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="annotations")
    context = models.CharField(max_length=100, default="default")
    style = models.CharField(
        max_length=10, choices=AnnotationStyle.choices, default=AnnotationStyle.DEFAULT
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["build", "context"], name="uniq_annotation_context")
        ]
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.build} annotation {self.context}"


class StepVerification(models.Model):
    """What a ``scan:``, ``browser:`` or ``release:`` step started, and how it ended.

    The step's jobs (``BuildJob``) are the scan's or the run's own jobs, so their logs and
    artifacts are the step's; ``summary`` keeps the figures the build page shows (findings by
    severity, tests passed and failed) and ``outcome`` says why the step passed or failed.
    """

    step = models.OneToOneField(BuildStep, on_delete=models.CASCADE, related_name="verification")
    kind = models.CharField(max_length=20)
    scan = models.ForeignKey(
        "scanning.Scan", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    browser_run = models.ForeignKey(
        "browser.BrowserRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deploy = models.ForeignKey(
        "errors.Deploy", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    summary = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.step} {self.kind}"


class ClusterPolicy(models.Model):
    """Which pipelines may run jobs on a cluster, and from which branches (e.g. the deploy
    cluster runs only builds of protected branches of the pipelines it allows)."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="policy")
    # False: any pipeline of the organization may target the cluster (the default).
    restricted = models.BooleanField(default=False)
    updated_by = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"policy of {self.cluster}"


class ClusterPipelineRule(models.Model):
    """One allowed pipeline of a restricted cluster; ``branches`` are space-separated patterns
    (``main release/*``); empty allows every branch."""

    policy = models.ForeignKey(ClusterPolicy, on_delete=models.CASCADE, related_name="rules")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    branches = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "pipeline"], name="uniq_cluster_rule")
        ]

    def __str__(self) -> str:
        return f"{self.policy.cluster}: {self.pipeline} ({self.branches or 'any branch'})"


class ClusterSecret(models.Model):
    """A secret of one cluster (``DEPLOY_TOKEN``), given to the jobs that run there.

    The value is encrypted (bastion.core.crypto) and write-only. ``rules`` narrows who gets it
    in the cluster policy's terms: ``[{"pipeline": slug, "branches": "main release/*"}]``;
    empty: every build that may run on the cluster.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="secrets")
    key = models.CharField(max_length=100)
    value_encrypted = models.TextField()
    description = models.CharField(max_length=500, blank=True, default="")
    rules = models.JSONField(default=list, blank=True)
    updated_by = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "key"], name="uniq_cluster_secret")
        ]

    def __str__(self) -> str:
        return f"{self.cluster}: {self.key}"
