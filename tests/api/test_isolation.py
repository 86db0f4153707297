"""Cross-organization matrix over every route of the API, read from the OpenAPI document.

Two organizations hold one object of every kind. For every operation (new endpoints are picked
up automatically) the path parameters are filled with organization B's ids and slugs:

* a member (session) and an API token of organization A get 404 for all of them, also when
  the ``{org}`` is A's own slug and only the object ids are B's;
* a viewer of A (session and viewer-role token) gets 403 for every write on A's own objects;
* and the database is exactly as it was afterwards.

A route whose path parameter is not in ``PATH_VALUES`` fails the test: add the object to
``build_world`` and its parameter name here, so the new route is covered too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from bastion.core import notifications, services
from bastion.core.access import Principal
from bastion.core.models import Organization, Role
from bastion.core.tokens import new_token
from bastion.errors import services as error_services
from bastion.errors.collaboration import add_comment as add_issue_comment
from bastion.errors.models import Issue
from bastion.jobs import services as job_services
from bastion.jobs.models import Agent, Job, JobKind
from bastion.pipelines import cluster_secrets
from tests.api.conftest import ApiClient, Team, make_team
from tests.browser.helpers import browser_environment, browser_world
from tests.browser.inbox_helpers import inbox_world
from tests.browser.schedule_helpers import schedule_world
from tests.pipelines.helpers import pipeline_schedule_of, pipeline_world
from tests.scanning.helpers import attachment_of, scanning_world
from tests.scanning.report_helpers import report_of, schedule_and_report, schedule_of

WRITE_METHODS = {"post", "put", "patch", "delete"}
# Routes with their own credentials (agent registration and session tokens, job tokens); their
# cluster isolation is tested with the agent protocol in tests/jobs.
EXCLUDED_PREFIXES = ("/api/v1/agent/",)
# Unscoped by design: any signed-in user may list their organizations and create one.
UNSCOPED = {("get", "/api/v1/organizations"), ("post", "/api/v1/organizations")}

PATH_VALUES: dict[str, Callable[[World], str]] = {
    "org": lambda w: w.org.slug,
    "project": lambda w: w.project,
    "username": lambda w: w.username,
    "invitation_id": lambda w: str(w.invitation_id),
    "token_id": lambda w: str(w.token_id),
    "name": lambda w: w.cluster,
    "cluster": lambda w: w.cluster,
    "job_id": lambda w: str(w.job_id),
    "agent_id": lambda w: str(w.agent_id),
    "agent_token_id": lambda w: str(w.agent_token_id),
    "pipeline": lambda w: w.pipeline,
    "number": lambda w: str(w.build_number),
    "step_key": lambda w: "gate",
    "build_job_id": lambda w: str(w.build_job_id),
    "pipeline_schedule_id": lambda w: str(pipeline_schedule_of(w.org, w.pipeline)),
    "issue_id": lambda w: str(w.issue_id),
    "comment_id": lambda w: str(w.comment_id),
    "key_id": lambda w: str(w.dsn_key_id),
    "test": lambda w: w.browser_test,
    "suite": lambda w: w.browser_suite,
    "environment": lambda w: w.browser_environment,
    "run_id": lambda w: str(w.browser_run_id),
    "target_id": lambda w: str(w.scan_target_id),
    "scan_id": lambda w: str(w.scan_id),
    "finding_id": lambda w: str(w.finding_id),
    "schedule_id": lambda w: str(schedule_of(w.scan_target_id)),
    "report_id": lambda w: str(report_of(w.scan_target_id)),
    "attachment_id": lambda w: str(attachment_of(w.finding_id)),
    "message_id": lambda w: str(w.message_id),
    "suite_schedule_id": lambda w: str(w.suite_schedule_id),
    "index": lambda w: "0",
    "channel_id": lambda w: str(w.channel_id),
    "key": lambda w: "DEPLOY_TOKEN",  # a cluster secret of every world
}


@dataclass
class World:
    team: Team
    org: Organization
    project: str
    username: str
    invitation_id: int
    token_id: int
    cluster: str
    agent_token_id: int
    agent_id: int
    job_id: int
    pipeline: str
    build_number: int
    build_job_id: int
    issue_id: int
    comment_id: int
    dsn_key_id: int
    browser_test: str
    browser_suite: str
    browser_environment: str
    browser_run_id: int
    scan_target_id: int
    scan_id: int
    finding_id: int
    message_id: int
    suite_schedule_id: int
    channel_id: int


def build_world(slug: str) -> World:
    team = make_team(slug)
    owner = Principal.of_user(team.owner)
    org = team.org
    project = services.create_project(owner, org, slug=f"{slug}-web", name="Web")
    invitation = services.invite_member(owner, org, email=f"new@{slug}.test", role=Role.MEMBER)
    token = services.create_api_token(owner, org, name="spare", role=Role.MEMBER)
    cluster = job_services.create_cluster(owner, org, name=f"{slug}-cluster")
    agent_token = job_services.create_agent_token(owner, cluster, description="agents")
    agent = Agent.objects.create(
        cluster=cluster,
        registration_token=agent_token.token,
        name=f"{slug}-agent",
        session_token_hash=new_token("ses").digest,
    )
    job = Job.objects.create(
        organization=org,
        cluster=cluster,
        kind=JobKind.COMMAND,
        label="build",
        payload={"command": "true"},
        created_by="test",
    )
    pipeline, build_number, build_job_id = pipeline_world(
        owner, org, cluster, agent_token.plaintext
    )
    cluster_secrets.create_secret(owner, cluster, key="DEPLOY_TOKEN", value=f"{slug}-secret-1")
    dsn_key = error_services.create_dsn_key(owner, project)
    browser_test, browser_suite, browser_run_id = browser_world(owner, project)
    browser_env = browser_environment(owner, project)
    now = timezone.now()
    issue = Issue.objects.create(
        project=project,
        grouping_version="test:v1",
        grouping_hash=f"{slug:0<64}"[:64],
        title="ZeroDivisionError: division by zero",
        first_seen=now,
        last_seen=now,
        event_count=1,
    )
    comment = add_issue_comment(owner, issue, "seen before")
    scan_target, scan, finding = scanning_world(project)
    schedule_and_report(scan_target, scan, cluster)
    message_id = inbox_world(browser_run_id)
    suite_schedule_id = schedule_world(owner, project, browser_suite)
    channel = notifications.create_channel(
        owner, org, name="ops", kind="webhook", target="http://127.0.0.1:9/hook", topics=["*"]
    )
    return World(
        team=team,
        org=org,
        project=project.slug,
        username=team.member.username,
        invitation_id=invitation.invitation.pk,
        token_id=token.token.pk,
        cluster=cluster.name,
        agent_token_id=agent_token.token.pk,
        agent_id=agent.pk,
        job_id=job.pk,
        pipeline=pipeline,
        build_number=build_number,
        build_job_id=build_job_id,
        issue_id=issue.pk,
        comment_id=comment.pk,
        dsn_key_id=dsn_key.pk,
        browser_test=browser_test,
        browser_suite=browser_suite,
        browser_environment=browser_env,
        browser_run_id=browser_run_id,
        scan_target_id=scan_target.pk,
        scan_id=scan.pk,
        finding_id=finding.pk,
        message_id=message_id,
        suite_schedule_id=suite_schedule_id,
        channel_id=channel.pk,
    )


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    params: tuple[str, ...]
    body_schema: dict[str, Any] | None


def operations(doc: dict[str, Any]) -> Iterator[Operation]:
    for path, item in doc["paths"].items():
        if path.startswith(EXCLUDED_PREFIXES):
            continue
        for method, op in item.items():
            params = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            yield Operation(method, path, params, body.get("schema"))


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(doc, schema["allOf"][0])
    return schema


def example(doc: dict[str, Any], schema: dict[str, Any], world: World, name: str = "") -> Any:
    """A small valid value for a JSON schema: enough for the body to pass validation, so the
    answer we see is the authorization's, not the validator's. Fields that name an object
    (``cluster``, ``project``, ...) get that object of ``world``."""
    schema = _resolve(doc, schema)
    if name in PATH_VALUES and schema.get("type") == "string":
        return PATH_VALUES[name](world)
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][-1]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if _resolve(doc, s).get("type") != "null"]
        return example(doc, options[0], world, name) if options else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = schema.get("required", [])
        return {
            key: example(doc, sub, world, key)
            for key, sub in schema.get("properties", {}).items()
            if key in required or key in PATH_VALUES
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return (timezone.now() + timedelta(days=1)).isoformat()
    if "email" in name or schema.get("format") == "email":
        return "someone@example.test"
    return "probe"


def url_for(op: Operation, values: dict[str, str]) -> str:
    url = op.path
    for param in op.params:
        url = url.replace("{" + param + "}", values[param])
    return url


def values_of(world: World, op: Operation) -> dict[str, str]:
    unknown = [p for p in op.params if p not in PATH_VALUES]
    assert not unknown, (
        f"{op.method.upper()} {op.path}: no test object for path parameter(s) {unknown}; "
        "add one to build_world and PATH_VALUES in tests/api/test_isolation.py"
    )
    return {p: PATH_VALUES[p](world) for p in op.params}


def fingerprint() -> dict[str, list[dict[str, Any]]]:
    """Every row of every Bastion model (bookkeeping timestamps of authentication aside)."""
    volatile = {"last_used_at", "last_login", "last_heartbeat_at"}
    state: dict[str, list[dict[str, Any]]] = {}
    for model in apps.get_models():
        if not model.__module__.startswith("bastion."):
            continue
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in volatile]
        rows = model._default_manager.order_by("pk").values(*fields)
        state[model._meta.label] = [dict(r) for r in rows]
    return state


@pytest.fixture
def worlds(db: None) -> tuple[World, World]:
    return build_world("alpha"), build_world("beta")


@pytest.fixture
def doc() -> dict[str, Any]:
    return Client().get("/api/v1/openapi.json").json()


def _call(client: ApiClient, doc: dict[str, Any], op: Operation, url: str, world: World) -> int:
    body = example(doc, op.body_schema, world) if op.body_schema else None
    return client.call(op.method.upper(), url, body).status


def test_members_and_tokens_of_a_get_404_for_every_object_of_b(
    worlds: tuple[World, World], doc: dict[str, Any]
) -> None:
    a, b = worlds
    clients = {
        "owner session": ApiClient(user=a.team.owner),
        "owner token": a.team.as_owner(),
    }
    before = fingerprint()
    probed = 0
    wrong: list[str] = []
    for op in operations(doc):
        if (op.method, op.path) in UNSCOPED:
            continue
        assert op.params, f"{op.method.upper()} {op.path} is not scoped by any path parameter"
        theirs = values_of(b, op)
        urls = {url_for(op, theirs)}
        if "org" in op.params and len(op.params) > 1:
            urls.add(url_for(op, {**theirs, "org": a.org.slug}))  # our org, their object
        for who, client in clients.items():
            for url in urls:
                status = _call(client, doc, op, url, b)
                probed += 1
                if status != 404:
                    wrong.append(f"{who}: {op.method.upper()} {url} -> {status}")
    assert not wrong, "\n".join(wrong)
    assert probed >= 50
    assert fingerprint() == before


def test_viewers_get_403_for_every_write_and_nothing_changes(
    worlds: tuple[World, World], doc: dict[str, Any]
) -> None:
    a, _ = worlds
    clients = {
        "viewer session": ApiClient(user=a.team.viewer),
        "viewer token": a.team.as_viewer(),
    }
    before = fingerprint()
    probed = 0
    wrong: list[str] = []
    for op in operations(doc):
        if op.method not in WRITE_METHODS:
            continue
        url = url_for(op, values_of(a, op))
        for who, client in clients.items():
            if (op.method, op.path) in UNSCOPED and who == "viewer session":
                continue  # any user may create an organization of their own
            status = _call(client, doc, op, url, a)
            probed += 1
            if status != 403:
                wrong.append(f"{who}: {op.method.upper()} {url} -> {status}")
    assert not wrong, "\n".join(wrong)
    assert probed >= 15
    assert fingerprint() == before


def test_the_matrix_reaches_the_handlers(worlds: tuple[World, World], doc: dict[str, Any]) -> None:
    """Guard against a vacuous matrix: the same probes by A's owner on A's own objects are
    answered by the handlers (2xx or a domain 400/409), not by routing or validation errors."""
    a, _ = worlds
    client = a.team.as_owner()
    for op in operations(doc):
        if op.method not in WRITE_METHODS and (op.method, op.path) not in UNSCOPED:
            status = _call(client, doc, op, url_for(op, values_of(a, op)), a)
            assert 200 <= status < 300, (op.method, op.path, status)
