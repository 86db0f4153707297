"""Runs on the server: a test or suite run becomes ``browser`` jobs, and their results come back.

``start_run`` splits the run's tests over ``concurrency`` jobs (round-robin, so the agents of
the cluster share a suite), each job linked to the run by ``origin = "browser.run:<id>"``.
When the last of them finishes, ``finish_run`` reads each job's uploaded
``browser-results.json`` artifact and stores the results on the run; screenshots and videos stay
where the agent uploaded them (job artifacts, in Django's storage), and each result records the
artifact folder its relative paths are in.

The post-save hook (``signals``) is the fast path; ``sweep`` (every scheduler tick) finishes
runs whose hook never ran.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from bastion.browser import notices, vault
from bastion.browser.mail.addresses import new_token
from bastion.browser.models import (
    BrowserRun,
    Environment,
    MailToken,
    RunStatus,
    StoredTest,
    Suite,
)
from bastion.core import audit
from bastion.core.access import Principal, projects_for, require_role
from bastion.core.models import Project, Role
from bastion.jobs import dispatch
from bastion.jobs.models import FINISHED_STATES, Artifact, Cluster, Job, JobState
from bastion.jobs.services import DEFAULT_CLUSTER

logger = logging.getLogger(__name__)

ORIGIN_PREFIX = "browser.run:"
RESULTS_FILE = "browser-results.json"
ARTIFACT_PATHS = [RESULTS_FILE, "artifacts/**/*"]
MAX_JOBS = 8
MAX_MODULES = 200
SWEEP_BATCH = 200
UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)
DEFAULT_TIMEOUT_S = 1800


def origin_of(run: BrowserRun) -> str:
    return f"{ORIGIN_PREFIX}{run.pk}"


def run_jobs(run: BrowserRun) -> list[Job]:
    return list(Job.objects.filter(origin=origin_of(run)).order_by("pk"))


def get_run_for(principal: Principal, project: Project, run_id: int) -> BrowserRun:
    run = BrowserRun.objects.filter(
        pk=run_id, project=project, project__in=projects_for(principal)
    ).first()
    if run is None:
        raise Http404("No such browser run.")
    require_role(principal, project.organization, Role.VIEWER)
    return run


@dataclass(frozen=True)
class RunRequest:
    test: StoredTest | None = None
    suite: Suite | None = None
    environment: Environment | None = None
    cluster: Cluster | None = None
    concurrency: int | None = None
    video: bool = True
    timeout_s: int = DEFAULT_TIMEOUT_S


def _tests_of(request: RunRequest) -> list[StoredTest]:
    if (request.test is None) == (request.suite is None):
        raise ValidationError({"test": ["Run either one test or one suite."]})
    if request.test is not None:
        return [request.test]
    assert request.suite is not None
    tests = [entry.test for entry in request.suite.entries.select_related("test")]
    tests = [test for test in tests if not test.import_only]
    if not tests:
        raise ValidationError({"suite": ["The suite has no tests to run."]})
    return tests


def _cluster(project: Project, cluster: Cluster | None) -> Cluster:
    if cluster is not None:
        if cluster.organization_id != project.organization_id:
            raise Http404("No such cluster.")
        return cluster
    found = Cluster.objects.filter(
        organization=project.organization, name=DEFAULT_CLUSTER
    ).first() or (Cluster.objects.filter(organization=project.organization).order_by("pk").first())
    if found is None:
        raise ValidationError({"cluster": ["The organization has no cluster to run tests on."]})
    return found


def _chunks(tests: Sequence[StoredTest], count: int) -> list[list[StoredTest]]:
    count = max(1, min(count, MAX_JOBS, len(tests)))
    return [list(tests[i::count]) for i in range(count)]


def _mail_tokens(run: BrowserRun, chunk: list[StoredTest]) -> list[str]:
    """One fresh token per test: its addresses (``{{run.email}}``, ``{{email.<label>}}``)."""
    tokens = [MailToken(token=new_token(), run=run, test_slug=test.slug) for test in chunk]
    MailToken.objects.bulk_create(tokens)
    return [t.token for t in tokens]


def _module_names(steps: object) -> Iterator[str]:
    """The modules a stored definition's steps import directly (nested steps included)."""
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict):
            if step.get("action") == "module":
                yield str(step.get("module", "")).removesuffix(".yaml")
            yield from _module_names(step.get("steps"))
            yield from _module_names(step.get("else_steps"))


def imported_modules(
    tests: Sequence[StoredTest], project_tests: dict[str, StoredTest]
) -> list[StoredTest]:
    """The tests of ``project_tests`` (by slug) that ``tests`` import, directly or through
    other modules: their secrets travel with the job."""
    found: dict[str, StoredTest] = {}
    frontier = [test.definition for test in tests]
    while frontier:
        steps = frontier.pop().get("steps")
        for name in _module_names(steps):
            if name in project_tests and name not in found:
                found[name] = project_tests[name]
                frontier.append(found[name].definition)
    return list(found.values())


def _payload(
    run: BrowserRun,
    request: RunRequest,
    chunk: list[StoredTest],
    project_tests: dict[str, StoredTest],
) -> dict[str, Any]:
    environment = request.environment
    return {
        "tests": [test.definition for test in chunk],
        "slugs": [test.slug for test in chunk],
        "run_ids": _mail_tokens(run, chunk),
        "mail_domain": settings.CONFIG.mail_domain,
        "modules": {slug: module.definition for slug, module in project_tests.items()},
        "base_url": environment.base_url if environment is not None else "",
        "variables": dict(request.suite.variables) if request.suite is not None else {},
        "environment": dict(environment.variables) if environment is not None else {},
        "concurrency": 1,
        "video": request.video,
        "artifact_paths": ARTIFACT_PATHS,
        # Secrets of the tests, their modules and the environment: encrypted, decrypted for
        # the agent only.
        **vault.sealed_payload(chunk, environment, imported_modules(chunk, project_tests)),
    }


def start_run(principal: Principal, project: Project, request: RunRequest) -> BrowserRun:
    """Create the run and its jobs in one transaction (audited)."""
    require_role(principal, project.organization, Role.MEMBER)
    for obj in (request.test, request.suite, request.environment):
        if obj is not None and obj.project_id != project.pk:
            raise Http404("No such object in this project.")
    tests = _tests_of(request)
    cluster = _cluster(project, request.cluster)
    concurrency = request.concurrency or (request.suite.concurrency if request.suite else 1)
    if not 1 <= concurrency <= MAX_JOBS:
        raise ValidationError({"concurrency": [f"Concurrency must be 1..{MAX_JOBS}."]})
    modules = {
        m.slug: m for m in StoredTest.objects.filter(project=project).order_by("slug")[:MAX_MODULES]
    }
    name = request.suite.slug if request.suite is not None else tests[0].slug
    with transaction.atomic():
        run = BrowserRun.objects.create(
            project=project,
            suite=request.suite,
            test=request.test,
            environment=request.environment,
            versions={test.slug: test.version for test in tests},
            triggered_by=principal.user,
        )
        jobs = []
        chunks = _chunks(tests, concurrency)
        for number, chunk in enumerate(chunks, start=1):
            jobs.append(
                dispatch.create_job(
                    principal,
                    project.organization,
                    cluster,
                    kind="browser",
                    payload=_payload(run, request, chunk, modules),
                    timeout_s=request.timeout_s,
                    label=f"browser {name} ({number}/{len(chunks)})",
                    origin=origin_of(run),
                )
            )
        run.job = jobs[0]
        run.save(update_fields=["job"])
        audit.record(
            principal.actor,
            "browser.run.start",
            organization=project.organization,
            target=run,
            changes={
                "tests": [test.slug for test in tests],
                "suite": request.suite.slug if request.suite else "",
                "environment": request.environment.slug if request.environment else "",
                "jobs": len(jobs),
            },
        )
    return run


# -- collecting results ---------------------------------------------------------------------
def _error_result(slug: str, job: Job, why: str) -> dict[str, Any]:
    return {
        "test": slug,
        "slug": slug,
        "status": "error",
        "error": why,
        "started_at": "",
        "duration_ms": 0.0,
        "steps": [],
        "job": job.pk,
        "artifact_dir": "",
    }


def _read_results(job: Job) -> list[dict[str, Any]] | None:
    artifact = Artifact.objects.filter(job=job, path=RESULTS_FILE).first()
    if artifact is None:
        return None
    try:
        with artifact.file.open("rb") as handle:
            document = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("browser job %s: unreadable results: %s", job.pk, exc)
        return None
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        logger.warning("browser job %s: results are not a list of objects", job.pk)
        return None
    return document


def _job_results(job: Job) -> list[dict[str, Any]]:
    slugs = [str(s) for s in job.payload.get("slugs") or []]
    document = _read_results(job) or []
    results: list[dict[str, Any]] = []
    for position, slug in enumerate(slugs, start=1):
        if position <= len(document):
            result = dict(document[position - 1])
            result.update(slug=slug, job=job.pk, artifact_dir=f"artifacts/{position:03d}/")
        elif job.state == JobState.CANCELED:
            result = _error_result(slug, job, "The run was canceled.")
        else:
            result = _error_result(slug, job, f"The job ended {job.state} without a result.")
        results.append(result)
    return results


def _status(jobs: list[Job], results: list[dict[str, Any]]) -> str:
    if any(job.state == JobState.CANCELED for job in jobs):
        return RunStatus.CANCELED
    statuses = {str(r.get("status")) for r in results}
    if "error" in statuses:
        return RunStatus.ERROR
    if statuses == {"passed"}:
        return RunStatus.PASSED
    return RunStatus.FAILED


def finish_run(run_id: int) -> str | None:
    """Store the results once every job of the run has finished; returns the run's status."""
    with transaction.atomic():
        run = BrowserRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return None
        if run.status not in UNFINISHED:
            return str(run.status)
        jobs = run_jobs(run)
        if not jobs:
            run.status = RunStatus.ERROR
        elif any(job.state not in FINISHED_STATES for job in jobs):
            started = [job.started_at for job in jobs if job.started_at is not None]
            if started and run.status == RunStatus.QUEUED:
                run.status = RunStatus.RUNNING
                run.started_at = min(started)
                run.save(update_fields=["status", "started_at"])
            return str(run.status)
        else:
            results = [result for job in jobs for result in _job_results(job)]
            run.results = results
            run.status = _status(jobs, results)
        started = [job.started_at for job in jobs if job.started_at is not None]
        run.started_at = run.started_at or (min(started) if started else None)
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "results", "started_at", "finished_at"])
        audit.record(
            Principal.system(f"browser-run:{run.pk}", organization=run.project.organization).actor,
            "browser.run.finish",
            organization=run.project.organization,
            target=run,
            changes={"status": run.status, "tests": len(run.results)},
        )
        notices.announce_failure(run)  # browser.run.failed, delivered after commit
    return str(run.status)


def on_job_finished(job: Job) -> None:
    try:
        finish_run(int(job.origin.removeprefix(ORIGIN_PREFIX)))
    except Exception:
        # The sweep retries at the next tick; log with the job for context.
        logger.exception("could not finish the browser run of job %s", job.pk)


def sweep(limit: int = SWEEP_BATCH) -> int:
    """Finish unfinished runs whose jobs have all finished (a missed hook); returns how many."""
    ids = list(
        BrowserRun.objects.filter(status__in=UNFINISHED)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    active = {
        origin
        for origin in Job.objects.filter(origin__in=[f"{ORIGIN_PREFIX}{pk}" for pk in ids])
        .exclude(state__in=FINISHED_STATES)
        .values_list("origin", flat=True)
    }
    done = [pk for pk in ids if f"{ORIGIN_PREFIX}{pk}" not in active]
    for pk in done:
        try:
            finish_run(pk)
        except Exception:
            logger.exception("could not finish browser run %s", pk)
    return len(done)
