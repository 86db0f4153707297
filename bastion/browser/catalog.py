"""Suites and environments after creation, cancelling runs, and what to re-run after a module
changed. Named actions (audited, one transaction each) and the scoped reads the pages use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from bastion.browser import runs
from bastion.browser.models import BrowserRun, Environment, RunStatus, StoredTest, Suite, SuiteTest
from bastion.browser.services import MAX_SUITE_CONCURRENCY, runs_for, tests_using_module
from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.models import Role
from bastion.jobs.dispatch import cancel_job
from bastion.jobs.models import FINISHED_STATES

MAX_RERUN = 50
NAME_LENGTH = 200


def _suite_errors(
    suite: Suite, name: str, tests: Sequence[str], concurrency: int
) -> tuple[dict[str, list[str]], dict[str, StoredTest]]:
    errors: dict[str, list[str]] = {}
    if len(name) > NAME_LENGTH:
        errors["name"] = [f"At most {NAME_LENGTH} characters."]
    if not 1 <= concurrency <= MAX_SUITE_CONCURRENCY:
        errors["concurrency"] = [f"Concurrency must be 1..{MAX_SUITE_CONCURRENCY}."]
    found = {
        t.slug: t for t in StoredTest.objects.filter(project=suite.project, slug__in=list(tests))
    }
    missing = [slug for slug in tests if slug not in found]
    if missing:
        errors["tests"] = [f"No such test: {slug}" for slug in missing]
    if len(set(tests)) != len(tests):
        errors.setdefault("tests", []).append("A test can be in a suite once.")
    return errors, found


def update_suite(
    principal: Principal,
    suite: Suite,
    *,
    name: str,
    tests: Sequence[str],
    concurrency: int,
    variables: Mapping[str, str],
) -> Suite:
    """Rename, choose and order the tests, set concurrency and variables (audited; variable
    values may be sensitive, so the audit row names them only)."""
    require_role(principal, suite.project.organization, Role.MEMBER)
    errors, found = _suite_errors(suite, name, tests, concurrency)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        before = [entry.test.slug for entry in suite.entries.select_related("test")]
        suite.name = name or suite.slug
        suite.concurrency = concurrency
        suite.variables = dict(variables)
        suite.save(update_fields=["name", "concurrency", "variables"])
        SuiteTest.objects.filter(suite=suite).delete()
        SuiteTest.objects.bulk_create(
            SuiteTest(suite=suite, test=found[slug], position=i) for i, slug in enumerate(tests)
        )
        audit.record(
            principal.actor,
            "browser.suite.update",
            organization=suite.project.organization,
            target=suite,
            changes={
                "tests": [before, list(tests)],
                "concurrency": concurrency,
                "variables": sorted(variables),
            },
        )
    return suite


def update_environment(
    principal: Principal,
    environment: Environment,
    *,
    name: str,
    base_url: str,
    variables: Mapping[str, str],
) -> Environment:
    require_role(principal, environment.project.organization, Role.ADMIN)
    errors: dict[str, list[str]] = {}
    if not base_url.startswith(("http://", "https://")) or len(base_url) > 500:
        errors["base_url"] = ["Must be an http:// or https:// URL (at most 500 characters)."]
    if len(name) > NAME_LENGTH:
        errors["name"] = [f"At most {NAME_LENGTH} characters."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        before = environment.base_url
        environment.name = name or environment.slug
        environment.base_url = base_url
        environment.variables = dict(variables)
        environment.save(update_fields=["name", "base_url", "variables"])
        audit.record(
            principal.actor,
            "browser.environment.update",
            organization=environment.project.organization,
            target=environment,
            changes={"base_url": [before, base_url], "variables": sorted(variables)},
        )
    return environment


def cancel_run(principal: Principal, run: BrowserRun) -> BrowserRun:
    """Cancel every unfinished job of the run (each audited by the job system) and record the
    request on the run; the run finishes as canceled when its jobs have stopped."""
    require_role(principal, run.project.organization, Role.MEMBER)
    with transaction.atomic():
        locked = BrowserRun.objects.select_for_update().get(pk=run.pk)
        if locked.status not in runs.UNFINISHED:
            raise ValidationError({"run": [f"The run has already finished ({locked.status})."]})
        jobs = [job for job in runs.run_jobs(locked) if job.state not in FINISHED_STATES]
        for job in jobs:
            cancel_job(principal, job)
        audit.record(
            principal.actor,
            "browser.run.cancel",
            organization=locked.project.organization,
            target=locked,
            changes={"jobs": [job.pk for job in jobs]},
        )
        # Jobs no agent had started are canceled now: the run may be finished already.
        runs.finish_run(locked.pk)
    locked.refresh_from_db()
    return locked


# -- reads ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SuiteStats:
    runs: list[BrowserRun]
    finished: int
    passed: int

    @property
    def pass_rate(self) -> float | None:
        return round(100.0 * self.passed / self.finished, 1) if self.finished else None


def suite_stats(principal: Principal, suite: Suite, limit: int = 50) -> SuiteStats:
    rows = list(
        runs_for(principal, suite.project)
        .filter(suite=suite)
        .select_related("environment")
        .order_by("-created_at")[:limit]
    )
    # A canceled run says nothing about the tests: it counts for neither side.
    finished = [r for r in rows if r.status not in (*runs.UNFINISHED, RunStatus.CANCELED)]
    passed = sum(1 for r in finished if r.status == RunStatus.PASSED)
    return SuiteStats(rows, len(finished), passed)


@dataclass(frozen=True)
class ModuleUser:
    test: StoredTest
    last_run: BrowserRun | None
    module_changed_at: datetime

    @property
    def outdated(self) -> bool:
        """Its last run is older than the module's last change (or it never ran): a run's
        payload snapshots the modules when the run is created."""
        return self.last_run is None or self.last_run.created_at < self.module_changed_at


def module_users(principal: Principal, module: StoredTest) -> list[ModuleUser]:
    """The tests that import ``module`` (directly or not), with their last run."""
    users = [t for t in tests_using_module(principal, module) if not t.import_only]
    found = []
    for test in users[: MAX_RERUN * 4]:
        last = (
            runs_for(principal, module.project)
            .filter(versions__has_key=test.slug)
            .order_by("-created_at")
            .first()
        )
        found.append(ModuleUser(test, last, module.updated_at))
    return found


def rerun_outdated(principal: Principal, module: StoredTest) -> list[BrowserRun]:
    """One click: run every test whose last run used an older version of ``module``."""
    require_role(principal, module.project.organization, Role.MEMBER)
    outdated = [user.test for user in module_users(principal, module) if user.outdated]
    if not outdated:
        raise ValidationError({"tests": ["Every test using this module ran after its change."]})
    started = []
    for test in outdated[:MAX_RERUN]:
        started.append(runs.start_run(principal, module.project, runs.RunRequest(test=test)))
    return started
