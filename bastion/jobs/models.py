"""The one execution model: jobs in the database, run by agents registered in clusters."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from bastion.core.models import Organization, User


class Cluster(models.Model):
    """An isolation boundary: its agent tokens register agents that see only its jobs."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="clusters"
    )
    name = models.CharField(max_length=50)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name}"


class Queue(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="queues")
    key = models.CharField(max_length=50)
    description = models.TextField(blank=True, default="")
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "key"], name="uniq_queue")]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.key}"


class AgentToken(models.Model):
    """Registration token of one cluster. Only its SHA-256 is stored; shown once at creation."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="agent_tokens")
    description = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    def __str__(self) -> str:
        return f"{self.description or 'agent token'} ({self.prefix}…)"


class AgentState(models.TextChoices):
    IDLE = "idle", "Idle"
    BUSY = "busy", "Busy"
    LOST = "lost", "Lost"
    DISCONNECTED = "disconnected", "Disconnected"


class Agent(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="agents")
    registration_token = models.ForeignKey(
        AgentToken, on_delete=models.SET_NULL, null=True, related_name="agents"
    )
    name = models.CharField(max_length=200)
    hostname = models.CharField(max_length=255, blank=True, default="")
    version = models.CharField(max_length=50, blank=True, default="")
    pid = models.IntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    queue = models.CharField(max_length=50, default="default", db_index=True)
    tags = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=0)
    session_token_hash = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=20, choices=AgentState.choices, default=AgentState.IDLE)
    registered_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(default=timezone.now, db_index=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    current_job = models.ForeignKey(
        "Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Set when the agent asked to take no further work (disconnect-after-job, graceful stop).
    ignore_in_dispatches = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class JobKind(models.TextChoices):
    COMMAND = "command", "Command"
    SCAN = "scan", "Scan"
    BROWSER = "browser", "Browser"
    ACCESS_MATRIX = "access-matrix", "Access matrix"


class JobState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ASSIGNED = "assigned", "Assigned"
    ACCEPTED = "accepted", "Accepted"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    TIMED_OUT = "timed_out", "Timed out"
    EXPIRED = "expired", "Expired"
    LOST = "lost", "Lost"


ACTIVE_STATES = (JobState.ASSIGNED, JobState.ACCEPTED, JobState.RUNNING)
FINISHED_STATES = (
    JobState.PASSED,
    JobState.FAILED,
    JobState.CANCELED,
    JobState.TIMED_OUT,
    JobState.EXPIRED,
    JobState.LOST,
)


class Job(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="jobs")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="jobs")
    queue = models.CharField(max_length=50, default="default")
    # Further agent tags the job needs besides the queue, e.g. {"os": "linux"}.
    agent_tags = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    label = models.CharField(max_length=300, blank=True, default="")
    # What to run: shape depends on kind (commands and env for 'command', target and profile
    # for 'scan', ...). Secrets are never stored here in clear.
    payload = models.JSONField(default=dict, blank=True)
    # Which domain object created the job, e.g. "pipelines.step:42" or "scanning.scan:7".
    origin = models.CharField(max_length=100, blank=True, default="", db_index=True)
    priority = models.IntegerField(default=0)
    state = models.CharField(
        max_length=20, choices=JobState.choices, default=JobState.SCHEDULED, db_index=True
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    token_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    timeout_s = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Why a cancel was asked for: "canceled" by a person/system or "timed_out".
    cancel_reason = models.CharField(max_length=20, blank=True, default="")
    exit_status = models.IntegerField(null=True, blank=True)
    signal_reason = models.CharField(max_length=50, blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    log_bytes = models.BigIntegerField(default=0)
    log_truncated = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["cluster", "state", "queue", "-priority", "created_at"], name="job_dispatch"
            ),
            models.Index(fields=["organization", "-created_at"], name="job_org_recent"),
        ]

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    def __str__(self) -> str:
        return f"job {self.pk} ({self.kind}, {self.state})"


class JobLogChunk(models.Model):
    """Ordered, idempotent log chunks: (job, seq) is unique, so a retried upload changes nothing."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_chunks")
    seq = models.PositiveIntegerField()
    data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="uniq_log_chunk")]


def artifact_path(instance: Artifact, filename: str) -> str:
    return f"artifacts/{instance.job.organization_id}/{instance.job_id}/{filename}"


class Artifact(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    path = models.CharField(max_length=500)
    file = models.FileField(upload_to=artifact_path, max_length=700)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "path"], name="uniq_artifact_path")]
