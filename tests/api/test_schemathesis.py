"""Property-based run of schemathesis over our own OpenAPI document, in process (WSGI).

Every operation gets generated requests (valid ones, and invalid ones), authenticated with a
real owner API token of a seeded organization: once with generated path parameters (mostly
unknown objects) and once pointed at the seeded objects, so the handlers run too. The checks:
no 5xx, the status code and content type are declared, and the body matches its schema.
Deterministic (derandomized) and bounded in examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bastion.core import services
from bastion.core.access import Principal
from bastion.errors.collaboration import add_comment as add_issue_comment
from bastion.errors.models import Issue
from bastion.jobs import services as job_services
from bastion.jobs.models import Job, JobKind
from bastion.pipelines import cluster_secrets
from tests.api.conftest import make_team
from tests.browser.helpers import browser_environment, browser_world
from tests.browser.inbox_helpers import inbox_world
from tests.browser.schedule_helpers import schedule_world
from tests.scanning.helpers import attachment_of, scanning_world
from tests.scanning.report_helpers import schedule_and_report

# Examples per operation and strategy: enough to find crashes in parsing and lookups while the
# whole run stays around a minute as the API grows.
EXAMPLES = {"positive": 6, "negative": 4, "seeded": 6}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def keep_connection() -> Iterator[None]:
    # Like Django's test client: the handler must not close the connection that holds the
    # test's transaction when a request finishes (close_old_connections would, inside atomic).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db: None) -> dict[str, Any]:
    team = make_team("seed")
    owner = Principal.of_user(team.owner)
    project = services.create_project(owner, team.org, slug="web", name="Web")
    scan_target, scan, finding = scanning_world(project)
    cluster = job_services.create_cluster(owner, team.org, name="ci")
    cluster_secrets.create_secret(owner, cluster, key="DEPLOY_TOKEN", value="seed-secret-1")
    schedule_id, report_id = schedule_and_report(scan_target, scan, cluster)
    job = Job.objects.create(
        organization=team.org, cluster=cluster, kind=JobKind.COMMAND, created_by="test"
    )
    browser_test, browser_suite, browser_run_id = browser_world(owner, project)
    issue = Issue.objects.create(
        project=project,
        grouping_version="test:v1",
        grouping_hash="0" * 64,
        title="KeyError: 'cart'",
        first_seen=timezone.now(),
        last_seen=timezone.now(),
        event_count=1,
    )
    comment = add_issue_comment(owner, issue, "seen before")
    return {
        "token": team.owner_token,
        "path": {
            "org": "seed",
            "project": "web",
            "username": team.member.username,
            "name": "ci",
            "cluster": "ci",
            "job_id": job.pk,
            "test": browser_test,
            "suite": browser_suite,
            "environment": browser_environment(owner, project),
            "run_id": browser_run_id,
            "target_id": scan_target.pk,
            "scan_id": scan.pk,
            "finding_id": finding.pk,
            "schedule_id": schedule_id,
            "report_id": report_id,
            "attachment_id": attachment_of(finding.pk),
            "message_id": inbox_world(browser_run_id),
            "suite_schedule_id": schedule_world(owner, project, browser_suite),
            "index": 0,
            "issue_id": issue.pk,
            "comment_id": comment.pk,
            "key": "DEPLOY_TOKEN",
        },
    }


def _run(strategy: Any, headers: dict[str, str], examples: int) -> None:
    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    run()


# The operations are split into shards so that the suite's workers share them (one test of all
# of them was the suite's longest by far).
SHARDS = 4


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_server_errors_and_responses_match_the_schema(
    shard: int, seeded: dict[str, Any], keep_connection: None
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
    headers = {"Authorization": f"Bearer {seeded['token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations[shard::SHARDS]:
        names = {p.name for p in operation.path_parameters}
        known = {k: v for k, v in seeded["path"].items() if k in names}
        positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        _run(positive, headers, EXAMPLES["positive"])
        _run(negative, headers, EXAMPLES["negative"])
        if known:
            _run(operation.as_strategy(path_parameters=known), headers, EXAMPLES["seeded"])
