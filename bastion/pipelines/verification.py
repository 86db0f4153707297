"""Bastion's own steps in a build: ``scan:``, ``browser:`` and the ``release:`` marker.

The scheduler calls ``start`` when such a step may run and ``progress`` while it runs, inside
``advance_build`` (the build's row is locked). A scan or browser step starts the scan or the
run through its app's own action, in the pipeline's organization and cluster, and its
``BuildJob`` rows point at that scan's or run's jobs: the step's log *is* the scan's (or the
run's) live log, and their artifacts are the step's. When the scan or run is done, the step
attaches its reports (``verification_reports``) and passes or fails by the result. A release
step records a deploy in the error tracker and passes at once.

The fast path is ``_job_saved``: a scan or browser job that finishes advances the builds that
wait on it after the commit. The scheduler's sweep finds the rest (a running step whose job
finished), as for command steps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.signals import post_save
from django.http import Http404
from django.urls import reverse

from bastion.browser import runs
from bastion.browser import services as browser_services
from bastion.browser.models import BrowserRun, RunStatus
from bastion.core import audit
from bastion.core.access import Principal, projects_for
from bastion.core.context import Actor
from bastion.core.models import Project
from bastion.errors import services as error_services
from bastion.jobs.models import FINISHED_STATES, Job
from bastion.pipelines import verification_reports as reports
from bastion.pipelines.models import Build, BuildJob, BuildStep, StepState, StepVerification
from bastion.pipelines.yaml import BrowserStep, ReleaseStep, ScanStep, VerificationStep
from bastion.scanning import access as scan_access
from bastion.scanning import services as scan_services
from bastion.scanning.models import Scan, ScanState

if TYPE_CHECKING:
    from bastion.pipelines.scheduler import _Run

logger = logging.getLogger(__name__)
KINDS = (ScanStep, BrowserStep, ReleaseStep)
SCAN_ORIGIN = "scanning"
_UID = "bastion.pipelines.verification_job_finished"


class Refused(Exception):
    """The step cannot start (no such target, unverified, ...): it fails with this reason."""


def _principal(build: Build) -> Principal:
    from bastion.pipelines.scheduler import scheduler_principal

    return scheduler_principal(build)


def _build_link(build: Build) -> tuple[str, str]:
    """A label and a path for the build, as the error tracker and audit rows show it."""
    path = reverse(
        "web:build",
        kwargs={
            "org": build.organization.slug,
            "pipeline": build.pipeline.slug,
            "number": build.number,
        },
    )
    return f"{build.pipeline} #{build.number}", path


def _project(principal: Principal, build: Build, slug: str | None, what: str) -> Project | None:
    if slug is None:
        return None
    project = projects_for(principal, build.organization).filter(slug=slug).first()
    if project is None:
        raise Refused(f"no project {slug!r} in this organization ({what})")
    return project


def _single(found: list[Any], what: str, hint: str) -> Any:
    if not found:
        raise Refused(f"no {what} in this organization")
    if len(found) > 1:
        raise Refused(f"several projects have a {what}: name the project with `{hint}`")
    return found[0]


# --- starting ---------------------------------------------------------------------------------


def _start_scan(run: _Run, row: BuildStep, step: ScanStep, principal: Principal) -> None:
    build = run.build
    project = _project(principal, build, step.project, "scan.project")
    targets = scan_access.targets_for(principal, build.organization).filter(name=step.target)
    if project is not None:
        targets = targets.filter(project=project)
    target = _single(list(targets[:2]), f"scan target {step.target!r}", "scan.project")
    scan = scan_services.start_scan(principal, target, build.pipeline.cluster, profile=step.profile)
    summary = {"target": target.name, "project": target.project.slug, "profile": step.profile,
               "fail_on": step.fail_on}  # fmt: skip
    _link(run, row, "scan", [scan.job] if scan.job else [], scan=scan, summary=summary)


def _suite_or_test(
    principal: Principal, build: Build, step: BrowserStep
) -> tuple[Project, dict[str, Any]]:
    project = _project(principal, build, step.project, "browser.project")
    projects = (
        [project] if project is not None else list(projects_for(principal, build.organization))
    )
    slug = step.suite or step.test or ""
    finder = browser_services.suites_for if step.suite else browser_services.tests_for
    hits = [(p, obj) for p in projects for obj in finder(principal, p).filter(slug=slug)[:1]]
    what = f"browser {'suite' if step.suite else 'test'} {slug!r}"
    found_project, found = _single(hits, what, "browser.project")
    request: dict[str, Any] = {"suite" if step.suite else "test": found}
    if step.environment is not None:
        try:
            request["environment"] = browser_services.get_environment_for(
                principal, found_project, step.environment
            )
        except Http404 as exc:
            raise Refused(
                f"no browser environment {step.environment!r} in {found_project.slug}"
            ) from exc
    return found_project, request


def _start_browser(run: _Run, row: BuildStep, step: BrowserStep, principal: Principal) -> None:
    build = run.build
    project, request = _suite_or_test(principal, build, step)
    browser_run = runs.start_run(
        principal, project, runs.RunRequest(cluster=build.pipeline.cluster, **request)
    )
    summary = {"project": project.slug, "suite": step.suite or "", "test": step.test or "",
               "environment": step.environment or ""}  # fmt: skip
    _link(run, row, "browser", runs.run_jobs(browser_run), browser_run=browser_run, summary=summary)


def _start_release(run: _Run, row: BuildStep, step: ReleaseStep, principal: Principal) -> None:
    build = run.build
    project = _project(principal, build, step.project, "release.project")
    if project is None:
        project = _single(list(projects_for(principal, build.organization)[:2]), "project",
                          "release.project")  # fmt: skip
    label, path = _build_link(build)
    deploy = error_services.record_deploy(
        principal, project, release=step.version, environment=step.environment,
        source=label, url=path,
    )  # fmt: skip
    summary = {"project": project.slug, "release": deploy.release,
               "environment": deploy.environment}  # fmt: skip
    _link(run, row, "release", [], deploy=deploy, summary=summary)
    _finish(run, row, step, StepState.PASSED, f"{deploy.release} deployed to {deploy.environment}")


def _link(
    run: _Run, row: BuildStep, kind: str, jobs: list[Job], summary: dict[str, Any], **links: Any
) -> None:
    """Record what the step started (audited) and make its jobs the step's jobs."""
    StepVerification.objects.create(step=row, kind=kind, summary=summary, **links)
    run.jobs[row.pk] = [
        BuildJob.objects.create(build=run.build, step=row, index=i, job=job)
        for i, job in enumerate(jobs)
    ]
    audit.record(
        _principal(run.build).actor,
        f"build.{kind}",
        organization=run.build.organization,
        target=run.build,
        changes={"step": row.key, **summary, **{k: v.pk for k, v in links.items()}},
    )
    run.set_state(row, StepState.RUNNING)


STARTERS = {ScanStep: _start_scan, BrowserStep: _start_browser, ReleaseStep: _start_release}


def start(run: _Run, row: BuildStep, step: VerificationStep) -> None:
    """Start the step's scan, run or deploy; a refusal fails the step with the reason."""
    principal = _principal(run.build)
    starter: Any = STARTERS[type(step)]
    try:
        with transaction.atomic():  # a savepoint: a refused start leaves nothing behind
            starter(run, row, step, principal)
    except (Refused, ValidationError, Http404, PermissionDenied) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        run.jobs.pop(row.pk, None)
        row.skip_reason = reason[:200]
        _finish(run, row, step, StepState.FAILED, reason)


# --- progress ---------------------------------------------------------------------------------


def _finish(run: _Run, row: BuildStep, step: VerificationStep, state: str, outcome: str) -> None:
    if state == StepState.FAILED and step.soft_fail.matches(1):
        state = StepState.SOFT_FAILED
    StepVerification.objects.filter(step=row).update(outcome=outcome[:300])
    run.set_state(row, state)


def _scan_progress(run: _Run, row: BuildStep, step: ScanStep, found: StepVerification) -> None:
    scan = (
        Scan.objects.select_related("job", "target__project__organization")
        .filter(pk=found.scan_id or 0)
        .first()
    )
    if scan is None:
        _finish(run, row, step, StepState.FAILED, "the scan was deleted")
        return
    scan = scan_services.sync_scan_from_job(Actor.system("scanning"), scan)
    if scan.state in (ScanState.QUEUED, ScanState.RUNNING):
        return
    if scan.state == ScanState.CANCELED:
        _finish(run, row, step, StepState.CANCELED, "the scan was canceled")
        return
    report = scan_services._report_of(scan.job) if scan.job is not None else None
    artifacts = reports.attach_scan_reports(scan.job, report) if scan.job is not None else []
    counts = reports.findings_by_severity(scan)
    gating = reports.at_or_above(counts, step.fail_on)
    found.summary = {**found.summary, "findings": counts, "gating": gating, "reports": artifacts}
    found.save(update_fields=["summary"])
    if scan.state == ScanState.FAILED:
        _finish(run, row, step, StepState.FAILED, f"the scan failed: {scan.error}"[:300])
    elif gating:
        _finish(run, row, step, StepState.FAILED,
                f"{gating} finding(s) at or above {step.fail_on}")  # fmt: skip
    else:
        below = "" if step.fail_on == "none" else f" at or above {step.fail_on}"
        _finish(run, row, step, StepState.PASSED, f"no findings{below}")


def _browser_progress(
    run: _Run, row: BuildStep, step: BrowserStep, found: StepVerification
) -> None:
    if found.browser_run_id is None:
        _finish(run, row, step, StepState.FAILED, "the browser run was deleted")
        return
    status = runs.finish_run(found.browser_run_id)
    if status in runs.UNFINISHED:
        return
    browser_run = BrowserRun.objects.get(pk=found.browser_run_id)
    results = list(browser_run.results)
    passed = sum(1 for r in results if r.get("status") == "passed")
    jobs = runs.run_jobs(browser_run)
    if jobs and results:
        xml = reports.junit_of(results, f"{run.build.pipeline} #{run.build.number} {row.key}")
        reports.attach(jobs[0], reports.JUNIT_ARTIFACT, xml.encode(), "application/xml")
    found.summary = {**found.summary, "passed": passed, "failed": len(results) - passed,
                     "tests": len(results), "status": status}  # fmt: skip
    found.save(update_fields=["summary"])
    if status == RunStatus.PASSED:
        _finish(run, row, step, StepState.PASSED, f"{passed} of {len(results)} test(s) passed")
    elif status == RunStatus.CANCELED:
        _finish(run, row, step, StepState.CANCELED, "the browser run was canceled")
    else:
        failed = len(results) - passed
        _finish(run, row, step, StepState.FAILED, f"{failed} of {len(results)} test(s) failed")


def progress(run: _Run, row: BuildStep, step: VerificationStep) -> None:
    """Follow a running step's scan or run; decide the step when it is done."""
    found = StepVerification.objects.filter(step=row).first()
    if found is None:
        _finish(run, row, step, StepState.FAILED, "the step lost its record")
    elif isinstance(step, ScanStep):
        _scan_progress(run, row, step, found)
    elif isinstance(step, BrowserStep):
        _browser_progress(run, row, step, found)


# --- the fast path ----------------------------------------------------------------------------


def _advance_waiting(job_id: int) -> None:
    from bastion.pipelines.scheduler import advance_builds

    advance_builds(
        BuildJob.objects.filter(job_id=job_id, superseded=False).values_list("build_id", flat=True)
    )


def _job_saved(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    origin = instance.origin
    if instance.state not in FINISHED_STATES:
        return
    if origin != SCAN_ORIGIN and not origin.startswith(runs.ORIGIN_PREFIX):
        return
    fields = kwargs.get("update_fields")
    if fields is not None and "state" not in fields:
        return
    job_id = instance.pk
    transaction.on_commit(lambda: _advance_waiting(job_id), robust=True)


def connect() -> None:
    post_save.connect(_job_saved, sender=Job, dispatch_uid=_UID)
