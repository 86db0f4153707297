"""What the editor and set-up pages do, over /api/v1/ too: edit suites and environments, set and
remove secrets (names only come back), cancel a run, a suite's pass rate, a module's users and
the re-run of those that ran an older version. Handlers fetch through the scoped helpers and
delegate to the named actions in ``catalog`` and ``vault``."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from bastion.browser import catalog, runs, services, vault
from bastion.browser.api import BASE, _principal, _project, _run_out
from bastion.browser.api import router as browser_router
from bastion.browser.models import Environment, StoredTest
from bastion.browser.schemas import EnvironmentOut, RunOut, SuiteOut
from bastion.core.models import Role

router = Router(tags=["browser"])
# Ninja resolves a path in one router: a method on a path the browser router already serves
# (GET /suites/{suite}) goes on that router, or the other method answers 405.


class BrowserSuiteUpdateIn(Schema):
    name: str = Field("", max_length=200)
    tests: list[str] = Field(default_factory=list, max_length=500)
    concurrency: int = Field(1, ge=1, le=8)
    variables: dict[str, str] = Field(default_factory=dict)


class BrowserSuiteStatsOut(Schema):
    runs: list[int]
    finished: int
    passed: int
    pass_rate: float | None


class BrowserEnvironmentUpdateIn(Schema):
    name: str = Field("", max_length=200)
    base_url: str = Field(..., max_length=500)
    variables: dict[str, str] = Field(default_factory=dict)


class BrowserEnvironmentDetailOut(EnvironmentOut):
    secrets: list[str]


class BrowserSecretIn(Schema):
    name: str = Field(..., max_length=64)
    value: str = Field(..., max_length=4096)


class BrowserSecretsOut(Schema):
    # Names only: values are never returned.
    secrets: list[str]


class BrowserModuleUserOut(Schema):
    test: str
    last_run: int | None
    last_run_at: datetime | None
    outdated: bool


def _environment(
    request: HttpRequest, org: str, project: str, slug: str, minimum: str
) -> Environment:
    found = _project(request, org, project, minimum)
    return services.get_environment_for(_principal(request), found, slug)


def _test(request: HttpRequest, org: str, project: str, slug: str, minimum: str) -> StoredTest:
    found = _project(request, org, project, minimum)
    return services.get_test_for(_principal(request), found, slug, minimum)


@browser_router.put(BASE + "/suites/{suite}", response=SuiteOut)
def update_suite(
    request: HttpRequest, org: str, project: str, suite: str, body: BrowserSuiteUpdateIn
) -> SuiteOut:
    found = _project(request, org, project, Role.MEMBER)
    stored = services.get_suite_for(_principal(request), found, suite, Role.MEMBER)
    catalog.update_suite(
        _principal(request),
        stored,
        name=body.name,
        tests=body.tests,
        concurrency=body.concurrency,
        variables=body.variables,
    )
    return SuiteOut.of(stored)


@router.get(BASE + "/suites/{suite}/stats", response=BrowserSuiteStatsOut)
def suite_stats(request: HttpRequest, org: str, project: str, suite: str) -> BrowserSuiteStatsOut:
    found = _project(request, org, project)
    stats = catalog.suite_stats(
        _principal(request), services.get_suite_for(_principal(request), found, suite)
    )
    return BrowserSuiteStatsOut(
        runs=[run.pk for run in stats.runs],
        finished=stats.finished,
        passed=stats.passed,
        pass_rate=stats.pass_rate,
    )


@router.get(BASE + "/environments/{environment}", response=BrowserEnvironmentDetailOut)
def get_environment(
    request: HttpRequest, org: str, project: str, environment: str
) -> BrowserEnvironmentDetailOut:
    found = _environment(request, org, project, environment, Role.VIEWER)
    return BrowserEnvironmentDetailOut(
        **EnvironmentOut.of(found).dict(), secrets=vault.names(found)
    )


@router.put(BASE + "/environments/{environment}", response=EnvironmentOut)
def update_environment(
    request: HttpRequest,
    org: str,
    project: str,
    environment: str,
    body: BrowserEnvironmentUpdateIn,
) -> EnvironmentOut:
    found = _environment(request, org, project, environment, Role.ADMIN)
    catalog.update_environment(
        _principal(request),
        found,
        name=body.name,
        base_url=body.base_url,
        variables=body.variables,
    )
    return EnvironmentOut.of(found)


@router.post(BASE + "/environments/{environment}/secrets", response=BrowserSecretsOut)
def set_environment_secret(
    request: HttpRequest, org: str, project: str, environment: str, body: BrowserSecretIn
) -> BrowserSecretsOut:
    found = _environment(request, org, project, environment, Role.ADMIN)
    vault.set_secret(_principal(request), found, body.name, body.value)
    return BrowserSecretsOut(secrets=vault.names(found))


@router.delete(BASE + "/environments/{environment}/secrets", response=BrowserSecretsOut)
def remove_environment_secret(
    request: HttpRequest, org: str, project: str, environment: str, name: str = ""
) -> BrowserSecretsOut:
    found = _environment(request, org, project, environment, Role.ADMIN)
    vault.remove_secret(_principal(request), found, name)
    return BrowserSecretsOut(secrets=vault.names(found))


@router.get(BASE + "/tests/{test}/secrets", response=BrowserSecretsOut)
def test_secrets(request: HttpRequest, org: str, project: str, test: str) -> BrowserSecretsOut:
    return BrowserSecretsOut(secrets=vault.names(_test(request, org, project, test, Role.VIEWER)))


@router.post(BASE + "/tests/{test}/secrets", response=BrowserSecretsOut)
def set_test_secret(
    request: HttpRequest, org: str, project: str, test: str, body: BrowserSecretIn
) -> BrowserSecretsOut:
    found = _test(request, org, project, test, Role.MEMBER)
    vault.set_secret(_principal(request), found, body.name, body.value)
    return BrowserSecretsOut(secrets=vault.names(found))


@router.delete(BASE + "/tests/{test}/secrets", response=BrowserSecretsOut)
def remove_test_secret(
    request: HttpRequest, org: str, project: str, test: str, name: str = ""
) -> BrowserSecretsOut:
    found = _test(request, org, project, test, Role.MEMBER)
    vault.remove_secret(_principal(request), found, name)
    return BrowserSecretsOut(secrets=vault.names(found))


@router.get(BASE + "/tests/{test}/users", response=list[BrowserModuleUserOut])
def module_users(
    request: HttpRequest, org: str, project: str, test: str
) -> list[BrowserModuleUserOut]:
    module = _test(request, org, project, test, Role.VIEWER)
    return [
        BrowserModuleUserOut(
            test=user.test.slug,
            last_run=user.last_run.pk if user.last_run else None,
            last_run_at=user.last_run.created_at if user.last_run else None,
            outdated=user.outdated,
        )
        for user in catalog.module_users(_principal(request), module)
    ]


@router.post(BASE + "/tests/{test}/rerun-outdated", response={201: list[RunOut]})
def rerun_outdated(request: HttpRequest, org: str, project: str, test: str) -> Status[list[RunOut]]:
    module = _test(request, org, project, test, Role.MEMBER)
    started = catalog.rerun_outdated(_principal(request), module)
    return Status(201, [_run_out(run) for run in started])


@router.post(BASE + "/runs/{run_id}/cancel", response=RunOut)
def cancel_run(request: HttpRequest, org: str, project: str, run_id: int) -> RunOut:
    found = _project(request, org, project, Role.MEMBER)
    run = runs.get_run_for(_principal(request), found, run_id)
    catalog.cancel_run(_principal(request), run)
    run.refresh_from_db()
    return _run_out(run)
