"""The queue page's figures: per cluster and queue, the waiting jobs and how long they wait,
the agents idle and busy, and the p50/p95 wait of the jobs assigned in the last hour."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from bastion.jobs.models import Agent, AgentState, Job, JobState

WINDOW = timedelta(hours=1)
SHOWN_WAITING = 20
# A bound on the rows read for the hour's percentiles (the newest are kept).
MAX_SAMPLES = 5000


@dataclass
class QueueStats:
    cluster: str
    queue: str
    waiting: list[tuple[Job, float]] = field(default_factory=list)
    waiting_count: int = 0
    idle: int = 0
    busy: int = 0
    samples: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float | None:
        return _percentile(self.samples, 0.50)

    @property
    def p95(self) -> float | None:
        return _percentile(self.samples, 0.95)

    @property
    def oldest_s(self) -> float:
        return max((w for _, w in self.waiting), default=0.0)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def queue_stats(
    jobs: QuerySet[Job], agents: QuerySet[Agent], now: datetime | None = None
) -> list[QueueStats]:
    """Figures per (cluster, queue) from already-scoped querysets, in three queries."""
    now = now or timezone.now()
    stats: dict[tuple[str, str], QueueStats] = {}

    def row(cluster: str, queue: str) -> QueueStats:
        return stats.setdefault((cluster, queue), QueueStats(cluster, queue))

    live = agents.filter(state__in=(AgentState.IDLE, AgentState.BUSY))
    for cluster, queue, state in live.values_list("cluster__name", "queue", "state"):
        entry = row(cluster, queue)
        entry.busy += state == AgentState.BUSY
        entry.idle += state == AgentState.IDLE
    waiting = jobs.filter(state=JobState.SCHEDULED).select_related("cluster").order_by("created_at")
    for job in waiting[:2000]:
        entry = row(job.cluster.name, job.queue)
        entry.waiting_count += 1
        if len(entry.waiting) < SHOWN_WAITING:
            entry.waiting.append((job, (now - job.created_at).total_seconds()))
    recent = (
        jobs.filter(assigned_at__gte=now - WINDOW, assigned_at__isnull=False)
        .order_by("-assigned_at")
        .values_list("cluster__name", "queue", "created_at", "assigned_at")[:MAX_SAMPLES]
    )
    for cluster, queue, created, assigned in recent:
        if assigned is not None:
            row(cluster, queue).samples.append(max(0.0, (assigned - created).total_seconds()))
    return [stats[key] for key in sorted(stats)]
