"""The sweep the scheduler runs every second: lost agents, expired jobs and timed-out jobs.

An agent silent for longer than ``settings.CONFIG.agent_lost_after_s`` is marked lost: jobs it
had not accepted go back to the queue, jobs it was running finish as ``lost`` with exit -1.
Scheduled jobs past ``expires_at`` expire; running jobs past ``timeout_s`` get a cancel request
with reason ``timed_out`` (their agent kills them and finishes them as timed_out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bastion.core import audit
from bastion.core.context import Actor
from bastion.jobs.models import ACTIVE_STATES, Agent, AgentState, Job, JobState

LIVE_AGENT_STATES = (AgentState.IDLE, AgentState.BUSY)


@dataclass(frozen=True)
class SweepReport:
    agents_lost: int = 0
    jobs_lost: int = 0
    jobs_requeued: int = 0
    jobs_expired: int = 0
    jobs_timed_out: int = 0


def abandon_jobs(agent_id: int, now: datetime, reason: str) -> tuple[int, int]:
    active = Job.objects.filter(agent_id=agent_id, state__in=ACTIVE_STATES)
    requeued = active.filter(state=JobState.ASSIGNED).update(
        state=JobState.SCHEDULED, agent=None, assigned_at=None
    )
    lost = active.update(state=JobState.LOST, exit_status=-1, signal_reason=reason, finished_at=now)
    return requeued, lost


def _mark_lost(agent_id: int, cutoff: datetime, now: datetime) -> tuple[bool, int, int]:
    with transaction.atomic():
        won = Agent.objects.filter(
            pk=agent_id, state__in=LIVE_AGENT_STATES, last_heartbeat_at__lt=cutoff
        ).update(state=AgentState.LOST, current_job=None)
        if not won:
            return False, 0, 0
        requeued, lost = abandon_jobs(agent_id, now, "agent_lost")
        agent = Agent.objects.select_related("cluster__organization").get(pk=agent_id)
        audit.record(
            Actor.system("scheduler"),
            "agent.lost",
            organization=agent.cluster.organization,
            target=agent,
            changes={"last_heartbeat_at": agent.last_heartbeat_at, "jobs_lost": lost},
        )
    return True, requeued, lost


def _past_timeout(
    now: datetime, timeout_s: int | None, started_at: datetime | None, accepted_at: datetime | None
) -> bool:
    began = started_at or accepted_at
    return (
        timeout_s is not None and began is not None and began + timedelta(seconds=timeout_s) <= now
    )


def _request_timeouts(now: datetime) -> int:
    running = Job.objects.filter(
        state__in=(JobState.ACCEPTED, JobState.RUNNING),
        timeout_s__isnull=False,
        cancel_requested_at__isnull=True,
    ).values_list("pk", "timeout_s", "started_at", "accepted_at")
    due = [
        pk
        for pk, timeout_s, started, accepted in running
        if _past_timeout(now, timeout_s, started, accepted)
    ]
    if not due:
        return 0
    return Job.objects.filter(pk__in=due, cancel_requested_at__isnull=True).update(
        cancel_requested_at=now, cancel_reason=JobState.TIMED_OUT
    )


def sweep(now: datetime | None = None) -> SweepReport:
    """Housekeeping the scheduler runs every second: lost agents, expired and timed-out jobs."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=float(settings.CONFIG.agent_lost_after_s))
    silent = list(
        Agent.objects.filter(state__in=LIVE_AGENT_STATES, last_heartbeat_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    agents_lost = jobs_lost = jobs_requeued = 0
    for agent_id in silent:
        won, requeued, lost = _mark_lost(agent_id, cutoff, now)
        agents_lost += int(won)
        jobs_requeued += requeued
        jobs_lost += lost
    jobs_expired = Job.objects.filter(state=JobState.SCHEDULED, expires_at__lte=now).update(
        state=JobState.EXPIRED, finished_at=now
    )
    return SweepReport(
        agents_lost=agents_lost,
        jobs_lost=jobs_lost,
        jobs_requeued=jobs_requeued,
        jobs_expired=jobs_expired,
        jobs_timed_out=_request_timeouts(now),
    )
