"""The build scheduler: turns ready steps into jobs and job results into step and build states.

``advance_build`` is idempotent and reads everything it needs from the database, so it can run
at any time and as often as wanted: right after a job of the build finishes (a post-commit hook)
and from the scheduler's periodic sweep, which picks up anything a crash or restart interrupted.
Each run holds the build's row lock (``SELECT ... FOR UPDATE``; SQLite serializes writers).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import transaction
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal
from bastion.jobs import dispatch
from bastion.jobs.gates import REFUSED
from bastion.jobs.models import FINISHED_STATES, Job, JobState
from bastion.pipelines import command_jobs, environment, notices, verification
from bastion.pipelines.advancer import advancer
from bastion.pipelines.models import (
    STEP_FINISHED,
    STEP_OK,
    Build,
    BuildJob,
    BuildState,
    BuildStep,
    StepState,
)
from bastion.pipelines.yaml import (
    BlockStep,
    CommandStep,
    GroupStep,
    Pipeline,
    Step,
    TriggerStep,
    WaitStep,
    parse_pipeline,
)
from bastion.pipelines.yaml.steps import SoftFail

logger = logging.getLogger(__name__)
ORIGIN_PREFIX = command_jobs.ORIGIN_PREFIX
SWEEP_BATCH = 200
JOB_FAILED = (JobState.FAILED, JobState.TIMED_OUT, JobState.LOST, JobState.EXPIRED)


@lru_cache(maxsize=128)
def _parsed(text: str, env: tuple[tuple[str, str], ...]) -> Pipeline:
    return parse_pipeline(text, dict(env))


def definition(build: Build) -> Pipeline:
    """The build's pipeline, parsed from the file it started with (cached per process)."""
    env = tuple(sorted(environment.interpolation_env(build).items()))
    return _parsed(build.pipeline_yaml, env)


def scheduler_principal(build: Build) -> Principal:
    return Principal.system(
        organization=build.organization, what=f"pipeline:{build.pipeline.slug}#{build.number}"
    )


@dataclass
class _Run:
    """One pass over a build: its rows, loaded once, and what changed."""

    build: Build
    pipeline: Pipeline
    steps: dict[str, BuildStep]
    jobs: dict[int, list[BuildJob]]
    dirty: set[str] = field(default_factory=set)
    # Command steps (pks) with a job still running, whose rows were not loaded (_load_jobs).
    busy: set[int] = field(default_factory=set)
    # Build jobs of steps started in this pass, inserted together (flush_new_jobs).
    new_jobs: list[BuildJob] = field(default_factory=list)
    # One timestamp per advance: steps changed together are saved with one UPDATE.
    now: datetime = field(default_factory=timezone.now)

    def flush_new_jobs(self) -> None:
        if self.new_jobs:
            BuildJob.objects.bulk_create(self.new_jobs, batch_size=500)
            self.new_jobs = []

    definitions: dict[str, Step] = field(default_factory=dict)

    def step(self, key: str) -> Step:
        if not self.definitions:
            self.definitions = {step.key: step for step in self.pipeline.steps}
        return self.definitions[key]

    def set_state(self, step: BuildStep, state: str) -> None:
        if step.state == state:
            return
        now = self.now
        step.state = state
        if state in STEP_FINISHED:
            step.finished_at = step.finished_at or now
        elif step.started_at is None and state != StepState.WAITING:
            step.started_at = now
        self.dirty.add(step.key)


# --- job outcomes and retries -------------------------------------------------------------------


def _soft_fail_for(step: CommandStep, build_job: BuildJob) -> SoftFail:
    if step.matrix is not None and isinstance(build_job.matrix, dict):
        for combo, override in step.matrix.combinations():
            if combo == build_job.matrix and override is not None:
                return override
    return step.soft_fail


def _outcome(run: _Run, step: CommandStep, build_job: BuildJob) -> str | None:
    """passed / soft_failed / failed / canceled, "retry", or None while the job is not done."""
    job = build_job.job
    if job is None:
        return StepState.CANCELED if run.build.cancel_requested_at else None
    if job.state not in FINISHED_STATES:
        return None
    if job.state == JobState.PASSED:
        return StepState.PASSED
    if job.state == JobState.CANCELED:
        return StepState.CANCELED
    exit_status = job.exit_status if job.exit_status is not None else -1
    if run.build.cancel_requested_at is None and job.cancel_reason != JobState.CANCELED:
        killed_by = _signal_of(exit_status)
        for rule in step.retry_automatic:
            if rule.matches(exit_status, job.signal_reason, killed_by):
                return "retry" if build_job.attempt < rule.limit else _soft(step, build_job)
    return _soft(step, build_job)


def _signal_of(exit_status: int) -> str:
    """The signal that killed the command (``KILL``), read from its exit status as the agent
    reports it (128 + N, as shells do); "" for a command that exited by itself."""
    if not 128 < exit_status <= 128 + 64:
        return ""
    try:
        return signal.Signals(exit_status - 128).name.removeprefix("SIG")
    except ValueError:
        return ""


def _soft(step: CommandStep, build_job: BuildJob) -> str:
    job = build_job.job
    assert job is not None
    if job.state == JobState.FAILED and _soft_fail_for(step, build_job).matches(job.exit_status):
        return StepState.SOFT_FAILED
    return StepState.FAILED


def new_attempt(build_job: BuildJob, retried_by: str) -> BuildJob:
    BuildJob.objects.filter(pk=build_job.pk).update(superseded=True, retried_by=retried_by)
    build_job.superseded = True
    return BuildJob.objects.create(
        build_id=build_job.build_id,
        step_id=build_job.step_id,
        index=build_job.index,
        matrix=build_job.matrix,
        attempt=build_job.attempt + 1,
        concurrency_group=build_job.concurrency_group,
        concurrency=build_job.concurrency,
    )


def _lost_reason(build_jobs: list[BuildJob]) -> str:
    """Why a step failed when no command failed: its job's agent vanished, it never ran, or a
    cluster policy refused it (when it was created or given to an agent)."""
    for build_job in build_jobs:
        job = build_job.job
        if job is not None and job.signal_reason == REFUSED:
            why = job.result.get("refused") if isinstance(job.result, dict) else None
            return f"job {job.pk} refused: {why or 'by the cluster policy'}"[:200]
        if job is not None and job.state == JobState.LOST:
            why = job.signal_reason or "lost"
            return f"job {job.pk} lost: its agent stopped answering ({why}, exit -1)"
        if job is not None and job.state == JobState.EXPIRED:
            return f"job {job.pk} expired: no agent of its queue took it in time"
    return ""


def _command_progress(run: _Run, row: BuildStep, step: CommandStep) -> None:
    outcomes: list[str | None] = []
    current = run.jobs.get(row.pk, [])
    for build_job in list(current):
        outcome = _outcome(run, step, build_job)
        if outcome == "retry":
            current.remove(build_job)
            current.append(new_attempt(build_job, "automatic"))
            outcome = None
        outcomes.append(outcome)
    if row.pk in run.busy or not outcomes or any(o is None for o in outcomes):
        return
    for state in (StepState.FAILED, StepState.CANCELED, StepState.SOFT_FAILED):
        if state in outcomes:
            row.skip_reason = _lost_reason(current) if state == StepState.FAILED else ""
            run.set_state(row, state)
            return
    run.set_state(row, StepState.PASSED)


# --- starting steps -----------------------------------------------------------------------------


def _expansions(step: CommandStep) -> list[tuple[int, dict[str, str] | None]]:
    if step.matrix is not None:
        return [(i, combo) for i, (combo, _) in enumerate(step.matrix.combinations())]
    return [(i, None) for i in range(max(1, step.parallelism or 1))]


def _start_command(run: _Run, row: BuildStep, step: CommandStep) -> None:
    created = [
        BuildJob(
            build=run.build,
            step=row,
            index=index,
            matrix=combo,
            concurrency_group=step.concurrency_group or "",
            concurrency=step.concurrency,
        )
        for index, combo in _expansions(step)
    ]
    run.new_jobs += created  # inserted before the jobs are created (their pks name the jobs)
    run.jobs[row.pk] = created
    run.set_state(row, StepState.RUNNING)


def _start_trigger(run: _Run, row: BuildStep, step: TriggerStep) -> None:
    from bastion.pipelines.services import trigger_build

    try:
        child = trigger_build(run.build, row, step)
    except Exception as exc:  # noqa: BLE001  (the step fails with the reason; the build goes on)
        logger.warning("trigger step %s of build %s failed: %s", row.key, run.build.pk, exc)
        row.skip_reason = str(exc)[:200]
        run.set_state(row, StepState.FAILED)
        return
    row.triggered_build = child
    run.set_state(row, StepState.PASSED if step.is_async else StepState.RUNNING)


def _trigger_progress(run: _Run, row: BuildStep, step: TriggerStep) -> None:
    child = (
        Build.objects.filter(pk=row.triggered_build_id or 0).values_list("state", flat=True).first()
    )
    if child is None:
        run.set_state(row, StepState.FAILED)
    elif child in (BuildState.PASSED, BuildState.NOT_RUN):
        run.set_state(row, StepState.PASSED)
    elif child == BuildState.CANCELED:
        run.set_state(row, StepState.CANCELED)
    elif child == BuildState.FAILED:
        run.set_state(row, StepState.SOFT_FAILED if step.soft_fail.any else StepState.FAILED)


def _dependencies(run: _Run, row: BuildStep) -> bool | None:
    """True: may run; False: a dependency failed; None: still waiting."""
    ok = True
    allow_any = run.step(row.key).allow_dependency_failure
    for need in row.needs:
        dep = run.steps.get(need["key"])
        if dep is None:
            continue
        if dep.state not in STEP_FINISHED:
            return None
        if dep.state in STEP_OK:
            continue
        if dep.state == StepState.FAILED and need.get("allow_failure"):
            continue
        if allow_any and dep.state in (StepState.FAILED, StepState.BROKEN):
            continue
        ok = False
    return ok


def _start(run: _Run, row: BuildStep) -> None:
    step = run.step(row.key)
    if isinstance(step, GroupStep):
        children = [run.steps[k] for k in step.children if k in run.steps]
        if all(c.state in STEP_OK for c in children):
            run.set_state(row, StepState.PASSED)
        else:
            run.set_state(row, StepState.FAILED)
        return
    ready = _dependencies(run, row)
    if ready is None:
        return
    if not ready:
        run.set_state(row, StepState.BROKEN)
    elif isinstance(step, CommandStep):
        _start_command(run, row, step)
    elif isinstance(step, WaitStep):
        run.set_state(row, StepState.PASSED)
    elif isinstance(step, BlockStep):
        run.set_state(row, StepState.BLOCKED)
    elif isinstance(step, TriggerStep):
        _start_trigger(run, row, step)
    elif isinstance(step, verification.KINDS):
        verification.start(run, row, step)


def _group_ready(run: _Run, row: BuildStep) -> bool:
    step = run.step(row.key)
    return isinstance(step, GroupStep) and all(
        run.steps[k].state in STEP_FINISHED for k in step.children if k in run.steps
    )


def _signature(run: _Run) -> tuple[tuple[str, ...], int]:
    return tuple(row.state for row in run.steps.values()), sum(len(j) for j in run.jobs.values())


def _pass(run: _Run) -> bool:
    """One pass over the unfinished steps; True when anything changed."""
    before = _signature(run)
    for row in run.steps.values():
        if row.is_finished:
            continue
        step = run.step(row.key)
        if run.build.cancel_requested_at and row.state in (StepState.WAITING, StepState.BLOCKED):
            run.set_state(row, StepState.CANCELED)
        elif row.state == StepState.RUNNING and isinstance(step, CommandStep):
            _command_progress(run, row, step)
        elif row.state == StepState.RUNNING and isinstance(step, TriggerStep):
            _trigger_progress(run, row, step)
        elif row.state == StepState.RUNNING and isinstance(step, verification.KINDS):
            verification.progress(run, row, step)
        elif row.state == StepState.WAITING and (row.type != "group" or _group_ready(run, row)):
            _start(run, row)
    return _signature(run) != before


# --- jobs for pending build jobs ------------------------------------------------------------------


# --- the build's state ----------------------------------------------------------------------------


def _build_state(run: _Run) -> str:
    states = [row.state for row in run.steps.values()]
    if all(s in STEP_FINISHED for s in states):
        if run.build.cancel_requested_at is not None:
            return BuildState.CANCELED
        if any(s in (StepState.FAILED, StepState.BROKEN, StepState.CANCELED) for s in states):
            return BuildState.FAILED
        if all(s == StepState.SKIPPED for s in states):
            return BuildState.NOT_RUN
        return BuildState.PASSED
    if run.build.cancel_requested_at is not None:
        return BuildState.CANCELING
    if StepState.FAILED in states:
        return BuildState.FAILING
    if StepState.BLOCKED in states and StepState.RUNNING not in states:
        return BuildState.BLOCKED
    return BuildState.RUNNING


def _cancel_on_failing(run: _Run) -> None:
    principal = scheduler_principal(run.build)
    for row in run.steps.values():
        step = run.step(row.key)
        if not (isinstance(step, CommandStep) and step.cancel_on_build_failing):
            continue
        running = BuildJob.objects.filter(step=row, superseded=False, job__isnull=False).exclude(
            job__state__in=FINISHED_STATES
        )
        for build_job in running.select_related("job__organization"):
            assert build_job.job is not None
            dispatch.cancel_job(principal, build_job.job)


def _save(run: _Run) -> None:
    run.flush_new_jobs()
    # Steps that changed alike (e.g. a fan-out's hundreds now running) share one UPDATE.
    alike: dict[tuple[Any, ...], list[int]] = {}
    for key in run.dirty:
        row = run.steps[key]
        values = (row.state, row.started_at, row.finished_at, row.skip_reason)
        alike.setdefault((*values, row.triggered_build_id), []).append(row.pk)
    for (state, started, finished, reason, triggered), pks in alike.items():
        BuildStep.objects.filter(pk__in=pks).update(
            state=state,
            started_at=started,
            finished_at=finished,
            skip_reason=reason,
            triggered_build_id=triggered,
        )
    notices.steps_finished(run.build, run.pipeline, [run.steps[key] for key in run.dirty])
    build = run.build
    state = _build_state(run)
    if state == build.state:
        return
    if state == BuildState.FAILING:
        _cancel_on_failing(run)
    now = timezone.now()
    before = build.state
    build.state = state
    if build.started_at is None and state != BuildState.SCHEDULED:
        build.started_at = now
    if build.is_finished:
        build.finished_at = now
        audit.record(
            scheduler_principal(build).actor,
            "build.finish",
            organization=build.organization,
            target=build,
            changes={"state": {"before": before, "after": state}},
        )
        if build.triggered_from_id is not None:
            parent = BuildStep.objects.filter(pk=build.triggered_from_id).values("build_id").first()
            if parent is not None:
                parent_id = parent["build_id"]
                transaction.on_commit(lambda: advance_build(parent_id), robust=True)
    build.save(update_fields=["state", "started_at", "finished_at"])
    if build.is_finished:
        notices.build_finished(build, run.pipeline)  # sent after this transaction commits


def _load_jobs(build: Build) -> tuple[dict[int, list[BuildJob]], set[int]]:
    """The jobs the scheduler must look at, by step, and the command steps with a job still
    running. An advance runs after every finished job of the build, so on a wide build it must
    not load every row: finished steps' jobs are skipped, and a command step's running jobs are
    only counted (its outcome waits for them; a finished sibling may still need a retry)."""
    current = BuildJob.objects.filter(build=build, superseded=False).exclude(
        step__state__in=STEP_FINISHED
    )
    running = current.filter(step__type="command", job__isnull=False).exclude(
        job__state__in=FINISHED_STATES
    )
    busy = set(running.values_list("step_id", flat=True))
    jobs: dict[int, list[BuildJob]] = {}
    for build_job in (
        current.exclude(pk__in=running.values("pk"))
        .select_related("job")
        .defer("job__payload", "job__result", "job__agent_tags")
        .order_by("pk")
    ):
        jobs.setdefault(build_job.step_id, []).append(build_job)
    return jobs, busy


def advance_build(build_id: int) -> str | None:
    """Bring one build up to date; returns its state (None when there is no such build)."""
    with transaction.atomic():
        build = (
            Build.objects.select_for_update()
            .select_related("pipeline__organization", "pipeline__cluster", "organization")
            .filter(pk=build_id)
            .first()
        )
        if build is None:
            return None
        if build.is_finished:
            return str(build.state)
        steps = {row.key: row for row in BuildStep.objects.filter(build=build).order_by("position")}
        jobs, busy = _load_jobs(build)
        run = _Run(build=build, pipeline=definition(build), steps=steps, jobs=jobs, busy=busy)
        for _ in range(len(steps) * 3 + 3):  # each pass settles at least one step or stops
            if not _pass(run) and not command_jobs.create_jobs(run):
                break
        _save(run)
        return str(build.state)


def advance_builds(build_ids: Iterable[int]) -> None:
    for build_id in sorted(set(build_ids)):
        try:
            advance_build(build_id)
        except Exception:
            # One broken build must not stop the others; it is retried at the next sweep.
            logger.exception("could not advance build %s", build_id)


def active_build_ids(limit: int = SWEEP_BATCH) -> list[int]:
    """Unfinished builds that have something to catch up on (each a small indexed query):
    a finished job whose step still runs (lost agent, missed hook), a job waiting for a
    concurrency slot, a cancel in progress, or a triggered build that finished."""
    unfinished = [BuildState.SCHEDULED, BuildState.RUNNING, BuildState.BLOCKED,
                  BuildState.FAILING, BuildState.CANCELING]  # fmt: skip
    stale = BuildJob.objects.filter(
        superseded=False, step__state=StepState.RUNNING, job__state__in=FINISHED_STATES
    ).values_list("build_id", flat=True)
    waiting = BuildJob.objects.filter(
        superseded=False, job__isnull=True, build__state__in=unfinished
    ).values_list("build_id", flat=True)
    canceling = Build.objects.filter(
        state__in=unfinished, cancel_requested_at__isnull=False
    ).values_list("pk", flat=True)
    triggers = BuildStep.objects.filter(
        type="trigger",
        state=StepState.RUNNING,
        triggered_build__state__in=[BuildState.PASSED, BuildState.FAILED,
                                    BuildState.CANCELED, BuildState.NOT_RUN],
    ).values_list("build_id", flat=True)  # fmt: skip
    ids: set[int] = set()
    for query in (stale, waiting, canceling, triggers):
        ids.update(query[:limit])
    return sorted(ids)[:limit]


def sweep() -> int:
    """Advance every unfinished build (what the periodic scheduler runs); returns how many."""
    ids = active_build_ids()
    advance_builds(ids)
    return len(ids)


def on_job_finished(job: Job) -> None:
    """After a pipeline job finished: advance its build, and builds waiting on its slot (in a
    web process, by its background advancer, so the agent's finish returns at once)."""
    build_job = (
        BuildJob.objects.filter(pk=int(job.origin.removeprefix(ORIGIN_PREFIX)))
        .values("build_id", "concurrency_group", "build__organization_id")
        .first()
    )
    if build_job is None:
        return
    ids = [build_job["build_id"]]
    if build_job["concurrency_group"]:
        ids += BuildJob.objects.filter(
            build__organization_id=build_job["build__organization_id"],
            concurrency_group=build_job["concurrency_group"],
            job__isnull=True,
            superseded=False,
        ).values_list("build_id", flat=True)
    advancer.submit(ids)
