"""Checks run when a job is dispatched to an agent (at poll time), registered by other apps.

A gate sees the job just assigned to an agent and may prepare it (the pipelines app puts the
cluster secrets a step asks for into its encrypted env) or refuse it with a reason: a refused
job fails at once (exit -1, ``policy_refused``) with the reason as its log, is audited, and the
agent goes on to its next candidate. Pipelines use this to re-check cluster policies that were
tightened after a build started.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from bastion.core import audit
from bastion.core.context import Actor
from bastion.jobs.models import Agent, AgentState, Job, JobLogChunk, JobState

REFUSED = "policy_refused"
Gate = Callable[[Job], "str | None"]
_GATES: list[Gate] = []


def register(gate: Gate) -> None:
    if gate not in _GATES:
        _GATES.append(gate)


def refusal(job: Job) -> str | None:
    """Run the gates in order; the first reason to refuse wins."""
    for gate in _GATES:
        reason = gate(job)
        if reason is not None:
            return reason
    return None


def refuse(actor: Actor, job: Job, reason: str) -> None:
    """Fail a job that was assigned but not run, with the reason as its log (audited)."""
    text = f"[bastion] refused at dispatch, nothing was run: {reason}\n"
    with transaction.atomic():
        job.state, job.exit_status, job.signal_reason = JobState.FAILED, -1, REFUSED
        job.finished_at = timezone.now()
        job.log_bytes = len(text.encode())
        job.result = {"refused": reason[:500]}  # the step shows it (pipelines.scheduler)
        fields = ["state", "exit_status", "signal_reason", "finished_at", "log_bytes", "result"]
        job.save(update_fields=fields)
        JobLogChunk.objects.create(job_id=job.pk, seq=0, data=text)
        if job.agent_id is not None:
            Agent.objects.filter(pk=job.agent_id, current_job_id=job.pk).update(
                current_job=None, state=AgentState.IDLE
            )
        audit.record(
            actor,
            "job.refused",
            organization=job.organization,
            target=job,
            changes={"reason": reason[:500]},
        )
