"""The ``jobs.Job`` rows of a build's command steps: created in one batch per scheduler pass.

A pipeline that fans out to hundreds of steps used to create (and audit) its jobs one by one
while holding the build's lock; here every pending build job whose concurrency slot is free is
turned into a job spec, checked against the cluster's policy, and created with one insert and
one audit row (``bastion.jobs.bulk``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat

from bastion.core.redaction import secret_env_names
from bastion.jobs import bulk, dispatch
from bastion.jobs.models import FINISHED_STATES, Job
from bastion.pipelines import environment, policies, repository, signing
from bastion.pipelines.models import BuildJob, BuildStep, StepState
from bastion.pipelines.yaml import CommandStep

if TYPE_CHECKING:
    from bastion.pipelines.scheduler import _Run

ORIGIN_PREFIX = "pipelines.job:"


def _slot_free(build_job: BuildJob, organization_id: int, taken: dict[str, int]) -> bool:
    group = build_job.concurrency_group
    if not group or build_job.concurrency is None:
        return True
    if group not in taken:
        taken[group] = (
            BuildJob.objects.filter(
                build__organization_id=organization_id,
                concurrency_group=group,
                job__isnull=False,
                superseded=False,
            )
            .exclude(job__state__in=FINISHED_STATES)
            .count()
        )
        older = BuildJob.objects.filter(
            build__organization_id=organization_id,
            concurrency_group=group,
            job__isnull=True,
            superseded=False,
            pk__lt=build_job.pk,
            build__cancel_requested_at__isnull=True,
        ).exclude(build_id=build_job.build_id)
        if older.exists():
            taken[group] = build_job.concurrency  # first come, first served across builds
    if taken[group] >= build_job.concurrency:
        return False
    taken[group] += 1
    return True


def job_spec(run: _Run, step: CommandStep, build_job: BuildJob) -> bulk.NewJob:
    combo = build_job.matrix if isinstance(build_job.matrix, dict) else None
    agents = {k: environment.substitute_matrix(v, combo) for k, v in step.agents.items()}
    queue = agents.pop("queue", dispatch.DEFAULT_QUEUE)
    env = environment.job_variables(run.build, step, build_job, run.pipeline.env)
    label = environment.substitute_matrix(step.label, combo)
    if step.parallelism:
        label = f"{label} ({build_job.index + 1}/{step.parallelism})"
    payload: dict[str, Any] = {
        "command": "set -e\n" + environment.substitute_matrix(step.command, combo),
        "env": env,
        "artifact_paths": list(step.artifact_paths),
    }
    named = secret_env_names(env)
    if named:
        # Values of variables named like secrets (DEPLOY_KEY, API_TOKEN) are masked in the log by
        # the agent and again by the server, as declared secrets are.
        payload["secret_env"] = named
    if step.secrets:
        # Names only: the values are added when an agent of the cluster takes the job.
        payload["cluster_secrets"] = dict(step.secrets)
    checkout = repository.checkout_payload(run.build)
    if checkout is not None:
        payload["checkout"] = checkout  # the agent checks the commit out first
    if step.signature is not None:
        # What agents with a verification key check before running (bastion.pipelines.signing).
        signed = {
            "signature": step.signature.value,
            "fields": list(step.signature.fields),
            "command": step.command,
            "env": dict(step.env),
            "agents": dict(step.signature.agents),
            "repository_url": step.signature.repository_url,
            # The agent checks the job's combination (``matrix``) is one this definition makes.
            "matrix": signing.matrix_definition(step.matrix),
        }
        payload |= {"signed": signed, "matrix": combo}
    return bulk.NewJob(
        kind="command",
        payload=payload,
        queue=queue,
        agent_tags=agents,
        priority=step.priority or 0,
        timeout_s=step.timeout_in_minutes * 60 if step.timeout_in_minutes else None,
        label=label,
        origin=f"{ORIGIN_PREFIX}{build_job.pk}",
    )


def _fail_step(run: _Run, row: BuildStep, build_job: BuildJob, reason: str) -> None:
    """E.g. an agents query naming an impossible queue: the step fails, with why."""
    BuildJob.objects.filter(pk=build_job.pk).update(superseded=True)
    run.jobs[row.pk].remove(build_job)
    row.skip_reason = reason[:200]
    run.set_state(row, StepState.FAILED)


def _pending(run: _Run) -> list[tuple[BuildStep, CommandStep, BuildJob]]:
    taken: dict[str, int] = {}
    found = []
    for row in run.steps.values():
        step = run.step(row.key)
        if not isinstance(step, CommandStep):
            continue
        for build_job in list(run.jobs.get(row.pk, [])):
            if build_job.job_id is None and _slot_free(build_job, run.build.organization_id, taken):
                found.append((row, step, build_job))
    return found


def create_jobs(run: _Run) -> bool:
    """Create the jobs of pending build jobs that may run; True when a step failed doing so
    (or the cluster's policy refused the jobs: they are created failed)."""
    if run.build.cancel_requested_at is not None:
        return False
    run.flush_new_jobs()
    refused = policies.refusal(run.build)
    failed = False
    ready: list[tuple[BuildJob, bulk.NewJob]] = []
    for row, step, build_job in _pending(run):
        try:
            spec = job_spec(run, step, build_job)
            bulk.validate(spec)
        except ValidationError as exc:
            _fail_step(run, row, build_job, "; ".join(exc.messages))
            failed = True
            continue
        ready.append((build_job, spec))
    if not ready:
        return failed
    principal = _principal(run)
    jobs = bulk.create_jobs(
        principal, run.build.organization, run.build.pipeline.cluster, [s for _, s in ready]
    )
    for (build_job, _), job in zip(ready, jobs, strict=True):
        build_job.job = job
    # Link every build job to its job in one statement (the job's origin names the build job).
    origin = Concat(Value(ORIGIN_PREFIX), Cast(OuterRef("pk"), CharField()))
    BuildJob.objects.filter(pk__in=[b.pk for b, _ in ready]).update(
        job=Subquery(Job.objects.filter(origin=origin).values("pk")[:1])
    )
    if refused is not None:
        policies.refuse_jobs(principal, run.build, jobs, refused)
        return True  # their steps fail in the next pass
    return failed


def _principal(run: _Run) -> Any:
    from bastion.pipelines.scheduler import scheduler_principal

    return scheduler_principal(run.build)
