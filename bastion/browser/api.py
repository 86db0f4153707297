"""Browser tests over /api/v1/: tests (YAML/JSON), suites, environments, runs and their results.

Handlers parse, fetch through the scoped helpers and delegate to ``services`` and ``runs``.
"""

from __future__ import annotations

import yaml
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.text import slugify
from ninja import Router
from ninja.responses import Status

from bastion.browser import runs, services
from bastion.browser.history import history_of
from bastion.browser.inbox_api import router as inbox_router
from bastion.browser.job_api import router as job_router
from bastion.browser.models import BrowserRun, StoredTest
from bastion.browser.results_api import router as results_router
from bastion.browser.schedule_api import router as schedule_router
from bastion.browser.schemas import (
    EnvironmentIn,
    EnvironmentOut,
    HistoryOut,
    RunIn,
    RunOut,
    SuiteIn,
    SuiteOut,
    TestDetailOut,
    TestIn,
    TestOut,
)
from bastion.browser.spec import dump_test, load_test
from bastion.core.access import Principal, get_project_for
from bastion.core.models import Project, Role
from bastion.jobs.models import Job
from bastion.jobs.services import get_cluster_for

router = Router(tags=["browser"])
# What a running browser job reads with its job token: /api/v1/agent/jobs/{job_id}/mail
router.add_router("/agent", job_router)
router.add_router("/", inbox_router)
router.add_router("/", schedule_router)
router.add_router("/", results_router)
BASE = "/organizations/{org}/projects/{project}/browser"
MAX_PAGE = 100


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


def _project(request: HttpRequest, org: str, project: str, minimum: str = Role.VIEWER) -> Project:
    return get_project_for(_principal(request), org, project, minimum)


def _definition(body: TestIn) -> dict[str, object]:
    if (body.definition is None) == (body.yaml is None):
        raise ValidationError({"definition": ["Send the test as either definition or yaml."]})
    if body.definition is not None:
        return body.definition
    try:
        data = yaml.safe_load(body.yaml or "")
    except yaml.YAMLError as exc:
        raise ValidationError({"yaml": [f"Not valid YAML/JSON: {exc}"]}) from exc
    if not isinstance(data, dict):
        raise ValidationError({"yaml": ["The test must be a mapping."]})
    return data


def _detail(principal: Principal, test: StoredTest) -> TestDetailOut:
    history = history_of(principal, test)
    return TestDetailOut(
        **TestOut.of(test).dict(),
        definition=test.definition,
        yaml=dump_test(load_test(test.definition, default_name=test.slug)),
        history=HistoryOut(
            runs=history.runs,
            passed=history.passed,
            pass_rate=history.pass_rate,
            flaky=history.flaky,
        ),
    )


def _run_out(run: BrowserRun, results: bool = True) -> RunOut:
    jobs = list(
        Job.objects.filter(origin=runs.origin_of(run)).order_by("pk").values_list("pk", flat=True)
    )
    return RunOut.of(run, jobs, results)


@router.get(BASE + "/tests", response=list[TestOut])
def list_tests(request: HttpRequest, org: str, project: str) -> list[TestOut]:
    found = _project(request, org, project)
    return [TestOut.of(t) for t in services.tests_for(_principal(request), found)[:MAX_PAGE]]


@router.post(BASE + "/tests", response={201: TestDetailOut})
def create_test(
    request: HttpRequest, org: str, project: str, body: TestIn
) -> Status[TestDetailOut]:
    principal = _principal(request)
    found = _project(request, org, project, Role.MEMBER)
    definition = _definition(body)
    slug = body.slug or slugify(str(definition.get("name") or ""))[:60]
    if slug and services.tests_for(principal, found).filter(slug=slug).exists():
        raise ValidationError({"slug": ["A test with that slug already exists here (use PUT)."]})
    stored = services.save_test(principal, found, definition, slug=slug)
    return Status(201, _detail(principal, stored))


@router.get(BASE + "/tests/{test}", response=TestDetailOut)
def get_test(request: HttpRequest, org: str, project: str, test: str) -> TestDetailOut:
    principal = _principal(request)
    found = _project(request, org, project)
    return _detail(principal, services.get_test_for(principal, found, test))


@router.put(BASE + "/tests/{test}", response=TestDetailOut)
def replace_test(
    request: HttpRequest, org: str, project: str, test: str, body: TestIn
) -> TestDetailOut:
    principal = _principal(request)
    found = _project(request, org, project, Role.MEMBER)
    stored = services.get_test_for(principal, found, test, Role.MEMBER)
    saved = services.save_test(principal, found, _definition(body), slug=stored.slug)
    return _detail(principal, saved)


@router.delete(BASE + "/tests/{test}", response={204: None})
def delete_test(request: HttpRequest, org: str, project: str, test: str) -> Status[None]:
    principal = _principal(request)
    found = _project(request, org, project, Role.MEMBER)
    services.delete_test(principal, services.get_test_for(principal, found, test, Role.MEMBER))
    return Status(204, None)


@router.get(BASE + "/suites", response=list[SuiteOut])
def list_suites(request: HttpRequest, org: str, project: str) -> list[SuiteOut]:
    found = _project(request, org, project)
    return [SuiteOut.of(s) for s in services.suites_for(_principal(request), found)[:MAX_PAGE]]


@router.post(BASE + "/suites", response={201: SuiteOut})
def create_suite(request: HttpRequest, org: str, project: str, body: SuiteIn) -> Status[SuiteOut]:
    found = _project(request, org, project, Role.MEMBER)
    suite = services.create_suite(
        _principal(request),
        found,
        slug=body.slug,
        name=body.name,
        tests=body.tests,
        concurrency=body.concurrency,
        variables=body.variables,
    )
    return Status(201, SuiteOut.of(suite))


@router.get(BASE + "/suites/{suite}", response=SuiteOut)
def get_suite(request: HttpRequest, org: str, project: str, suite: str) -> SuiteOut:
    found = _project(request, org, project)
    return SuiteOut.of(services.get_suite_for(_principal(request), found, suite))


@router.get(BASE + "/environments", response=list[EnvironmentOut])
def list_environments(request: HttpRequest, org: str, project: str) -> list[EnvironmentOut]:
    found = _project(request, org, project)
    rows = services.environments_for(_principal(request), found)[:MAX_PAGE]
    return [EnvironmentOut.of(e) for e in rows]


@router.post(BASE + "/environments", response={201: EnvironmentOut})
def create_environment(
    request: HttpRequest, org: str, project: str, body: EnvironmentIn
) -> Status[EnvironmentOut]:
    found = _project(request, org, project, Role.ADMIN)
    environment = services.create_environment(
        _principal(request),
        found,
        slug=body.slug,
        name=body.name,
        base_url=body.base_url,
        variables=body.variables,
    )
    return Status(201, EnvironmentOut.of(environment))


@router.post(BASE + "/runs", response={201: RunOut})
def start_run(request: HttpRequest, org: str, project: str, body: RunIn) -> Status[RunOut]:
    principal = _principal(request)
    found = _project(request, org, project, Role.MEMBER)
    request_ = runs.RunRequest(
        test=services.get_test_for(principal, found, body.test) if body.test else None,
        suite=services.get_suite_for(principal, found, body.suite) if body.suite else None,
        environment=(
            services.get_environment_for(principal, found, body.environment)
            if body.environment
            else None
        ),
        cluster=(
            get_cluster_for(principal, found.organization, body.cluster) if body.cluster else None
        ),
        concurrency=body.concurrency,
        video=body.video,
    )
    return Status(201, _run_out(runs.start_run(principal, found, request_)))


@router.get(BASE + "/runs", response=list[RunOut])
def list_runs(request: HttpRequest, org: str, project: str, limit: int = 50) -> list[RunOut]:
    found = _project(request, org, project)
    limit = max(1, min(limit, MAX_PAGE))
    rows = services.runs_for(_principal(request), found).select_related(
        "test", "suite", "environment"
    )[:limit]
    return [_run_out(run, results=False) for run in rows]


@router.get(BASE + "/runs/{run_id}", response=RunOut)
def get_run(request: HttpRequest, org: str, project: str, run_id: int) -> RunOut:
    found = _project(request, org, project)
    return _run_out(runs.get_run_for(_principal(request), found, run_id))
