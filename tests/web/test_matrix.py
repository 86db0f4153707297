"""The cross-organization and viewer matrices over every page of the web UI.

URL patterns are enumerated from the URLconf, so a new page under ``/o/<org>/`` is covered
without touching this file (and fails it loudly if it introduces an unknown URL parameter or
skips the scoped ``org_page``/``org_action`` decorators).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from bastion.core import notifications, services
from bastion.core.access import Principal
from bastion.core.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
    User,
)
from bastion.jobs import services as jobs
from bastion.jobs.models import AgentToken, Cluster, Job, JobState, Queue
from bastion.pipelines import cluster_secrets
from bastion.pipelines import services as pipelines
from bastion.pipelines.models import ClusterSecret
from bastion.web import urls as web_urls
from tests.browser.helpers import browser_environment, browser_world
from tests.browser.inbox_helpers import inbox_world
from tests.browser.schedule_helpers import schedule_world
from tests.factories import make_member, make_org, make_project, make_user
from tests.pipelines.helpers import pipeline_schedule_of, pipeline_schedule_world
from tests.scanning.helpers import attachment_of, scanning_world
from tests.scanning.report_helpers import report_of, schedule_and_report, schedule_of
from tests.web.conftest import login_client, make_agent, make_cluster, make_job

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class OrgPattern:
    name: str
    params: frozenset[str]
    is_action: bool


def org_patterns() -> Iterator[OrgPattern]:
    for entry in web_urls.urlpatterns:
        if isinstance(entry, URLResolver) and "<slug:org>" in str(entry.pattern):
            for pattern in entry.url_patterns:
                assert isinstance(pattern, URLPattern)
                callback: Any = pattern.callback
                assert hasattr(callback, "bastion_action"), (
                    f"{pattern.name} must use org_page or org_action (scoped lookups)"
                )
                yield OrgPattern(
                    name=f"web:{pattern.name}",
                    params=frozenset(pattern.pattern.converters) | {"org"},
                    is_action=bool(callback.bastion_action),
                )


ALL_PATTERNS = list(org_patterns())
KNOWN_PARAMS = {
    "org", "job_id", "membership_id", "invitation_id", "token_id", "cluster", "pipeline", "number",
    "project", "test", "run_id", "message_id", "part", "suite", "environment",
    "suite_schedule_id", "pipeline_schedule_id",
    "target_id", "scan_id", "finding_id", "channel_id", "attachment_id",
    "schedule_id", "report_id", "key",
}  # fmt: skip


@dataclass
class Tenant:
    owner: User
    org: Organization
    member: Membership
    invitation: Invitation
    api_token: ApiToken
    cluster: Cluster
    agent_token: AgentToken
    job: Job
    pipeline: str
    build_number: int
    scanning: tuple[int, int, int]
    project: str
    browser_test: str
    browser_run_id: int
    browser_suite: str
    browser_environment: str
    inbox_message_id: int
    suite_schedule_id: int
    channel_id: int

    def kwargs(self, params: frozenset[str], *, org: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {
            "org": org or self.org.slug,
            "job_id": self.job.pk,
            "membership_id": self.member.pk,
            "invitation_id": self.invitation.pk,
            "cluster": self.cluster.name,
            "pipeline": self.pipeline,
            "number": self.build_number,
            "target_id": self.scanning[0],
            "scan_id": self.scanning[1],
            "finding_id": self.scanning[2],
            "schedule_id": schedule_of(self.scanning[0]),
            "pipeline_schedule_id": pipeline_schedule_of(self.org, self.pipeline),
            "report_id": report_of(self.scanning[0]),
            "attachment_id": attachment_of(self.scanning[2]),
            "project": self.project,
            "test": self.browser_test,
            "run_id": self.browser_run_id,
            "suite": self.browser_suite,
            "environment": self.browser_environment,
            "message_id": self.inbox_message_id,
            "suite_schedule_id": self.suite_schedule_id,
            "part": 0,
            "channel_id": self.channel_id,
            "key": "DEPLOY_TOKEN",  # the cluster's secret
        }
        if "cluster" in params:
            values["token_id"] = self.agent_token.pk
        else:
            values["token_id"] = self.api_token.pk
        return {key: values[key] for key in params}


def make_tenant(slug: str, cluster_name: str) -> Tenant:
    owner = make_user()
    org = make_org(owner, slug=slug)
    principal = Principal.of_user(owner)
    project = make_project(org)
    scan_target, scan, finding = scanning_world(project)
    member_user = make_member(org, Role.MEMBER)
    member = Membership.objects.get(organization=org, user=member_user)
    invitation = services.invite_member(principal, org, email=f"x@{slug}.test", role="member")
    api_token = services.create_api_token(principal, org, name="ci", role="member")
    cluster = make_cluster(org, cluster_name)
    schedule_and_report(scan_target, scan, cluster)
    agent_token = jobs.create_agent_token(principal, cluster, description="t")
    cluster_secrets.create_secret(principal, cluster, key="DEPLOY_TOKEN", value=f"{slug}-value")
    make_agent(cluster, f"{slug}-agent")
    job = make_job(cluster, JobState.RUNNING)
    pipeline = pipelines.create_pipeline(
        principal, org, slug=f"{slug}-app", yaml="steps:\n  - block: Go?\n", cluster=cluster
    )
    build = pipelines.create_build(principal, pipeline)
    pipeline_schedule_world(principal, pipeline)
    browser_test, browser_suite, browser_run_id = browser_world(principal, project)
    browser_env = browser_environment(principal, project)
    inbox_message_id = inbox_world(browser_run_id)
    suite_schedule_id = schedule_world(principal, project, browser_suite)
    channel = notifications.create_channel(
        principal, org, name="ops", kind="webhook", target="http://127.0.0.1:9/hook", topics=["*"]
    )
    return Tenant(
        owner=owner,
        org=org,
        member=member,
        invitation=invitation.invitation,
        api_token=api_token.token,
        cluster=cluster,
        agent_token=agent_token.token,
        job=job,
        pipeline=pipeline.slug,
        build_number=build.number,
        scanning=(scan_target.pk, scan.pk, finding.pk),
        project=project.slug,
        browser_test=browser_test,
        browser_run_id=browser_run_id,
        browser_suite=browser_suite,
        browser_environment=browser_env,
        inbox_message_id=inbox_message_id,
        suite_schedule_id=suite_schedule_id,
        channel_id=channel.pk,
    )


def post_data() -> dict[str, str]:
    """Valid input for every form, so a refusal is about who asks, not what they sent."""
    return {
        "name": "matrix",
        "slug": "matrix-proj",
        "key": "matrix-queue",
        "email": "matrix@example.test",
        "role": "member",
        "description": "m",
        "expires": "",
    }


def snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (
            AuditEvent,
            Project,
            Membership,
            Invitation,
            ApiToken,
            Cluster,
            Queue,
            AgentToken,
            Job,
            ClusterSecret,
        )
    }


def request(client: Client, pattern: OrgPattern, url: str) -> int:
    if pattern.is_action:
        return client.post(url, post_data()).status_code
    return client.get(url).status_code


def test_every_org_pattern_is_enumerated_and_understood() -> None:
    names = {p.name for p in ALL_PATTERNS}
    assert {"web:dashboard", "web:job", "web:token-create", "web:agent-token-revoke"} <= names
    for pattern in ALL_PATTERNS:
        assert pattern.params <= KNOWN_PARAMS, f"teach the matrix about {pattern.name}"


def test_member_of_a_gets_404_for_every_object_url_of_b() -> None:
    a = make_tenant("alpha", "alpha-cluster")
    b = make_tenant("beta", "beta-cluster")
    client = login_client(a.owner)
    before = snapshot()
    checked = 0
    for pattern in ALL_PATTERNS:
        # B's organization in the URL.
        url = reverse(pattern.name, kwargs=b.kwargs(pattern.params))
        assert request(client, pattern, url) == 404, url
        checked += 1
        # A's own organization in the URL, but B's object ids: still nothing to see.
        if pattern.params - {"org"}:
            url = reverse(pattern.name, kwargs=b.kwargs(pattern.params, org=a.org.slug))
            assert request(client, pattern, url) == 404, url
            checked += 1
    assert checked > len(ALL_PATTERNS)
    assert snapshot() == before


def test_viewer_can_change_nothing() -> None:
    a = make_tenant("gamma", "gamma-cluster")
    viewer = make_member(a.org, Role.VIEWER)
    client = login_client(viewer)
    before = snapshot()
    actions = [p for p in ALL_PATTERNS if p.is_action]
    assert len(actions) >= 10
    for pattern in actions:
        url = reverse(pattern.name, kwargs=a.kwargs(pattern.params))
        assert client.post(url, post_data()).status_code == 403, url
    assert snapshot() == before


def test_viewer_can_read_the_pages_meant_for_everyone() -> None:
    a = make_tenant("delta", "delta-cluster")
    client = login_client(make_member(a.org, Role.VIEWER))
    admin_only = {"web:tokens"}
    for pattern in ALL_PATTERNS:
        if pattern.is_action:
            continue
        url = reverse(pattern.name, kwargs=a.kwargs(pattern.params))
        expected = 403 if pattern.name in admin_only else 200
        assert client.get(url).status_code == expected, url


def test_anonymous_is_sent_to_login_for_every_org_page() -> None:
    a = make_tenant("epsilon", "eps-cluster")
    client = Client()
    for pattern in ALL_PATTERNS:
        url = reverse(pattern.name, kwargs=a.kwargs(pattern.params))
        response = client.post(url, post_data()) if pattern.is_action else client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url
