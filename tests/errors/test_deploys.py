"""Deploys (a pipeline's ``release:`` step, or ``record_deploy``): the project page lists them,
"resolved in next release" knows old releases from the next one, the issue page says which
deploy shipped the fix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.errors import services
from bastion.errors.models import Deploy, Issue, IssueStatus
from tests.errors.conftest import Setup
from tests.errors.helpers import send_event


def _deploy(setup: Setup, release: str, **fields: str) -> Deploy:
    owner = Principal.of_user(setup.owner)
    return services.record_deploy(
        owner, setup.project, release=release, environment=fields.get("environment", "production"),
        source=fields.get("source", ""), url=fields.get("url", ""),
    )  # fmt: skip


def test_a_deploy_is_recorded_audited_and_listed_on_the_project_page(
    client: Client, setup: Setup
) -> None:
    deploy = _deploy(setup, "v7", source="acme/app #12", url="/o/acme/pipelines/app/builds/12/")
    row = AuditEvent.objects.get(action="errors.deploy")
    assert row.object_id == str(deploy.pk) and row.changes["release"] == "v7"
    client.force_login(setup.owner)
    body = client.get(f"/o/{setup.org.slug}/errors/{setup.project.slug}/").content.decode()
    assert 'data-testid="deploys"' in body and "v7" in body
    assert '<a href="/o/acme/pipelines/app/builds/12/">acme/app #12</a>' in body


@pytest.mark.parametrize(
    ("release", "environment"), [("", "production"), ("v1", ""), ("v1", "a/b"), ("x" * 201, "p")]
)
def test_bad_deploys_are_refused(setup: Setup, release: str, environment: str) -> None:
    with pytest.raises(ValidationError):
        _deploy(setup, release, environment=environment)
    assert not Deploy.objects.exists()


def test_next_release_ignores_releases_deployed_before_the_resolution(
    client: Client, setup: Setup
) -> None:
    old = _deploy(setup, "0.9")  # still running somewhere, never seen by the issue yet
    send_event(client, setup, release="1.0")
    issue = Issue.objects.get(project=setup.project)
    services.resolve_issue(Principal.of_user(setup.owner), issue, in_next_release=True)
    issue.refresh_from_db()
    Deploy.objects.filter(pk=old.pk).update(
        deployed_at=issue.status_changed_at - timedelta(hours=1)
    )
    client.force_login(setup.owner)
    page = f"/o/{setup.org.slug}/errors/{setup.project.slug}/issues/{issue.pk}/"
    assert "Waiting for the next deploy" in client.get(page).content.decode()

    send_event(client, setup, release="0.9")
    issue.refresh_from_db()
    assert issue.status == IssueStatus.RESOLVED and not issue.regressed

    _deploy(setup, "1.1", source="acme/app #3", url="/o/acme/pipelines/app/builds/3/")
    body = client.get(page).content.decode()
    assert 'data-testid="next-release"' in body and "Shipped in <strong>1.1</strong>" in body
    send_event(client, setup, release="1.1")
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED and issue.regressed
    body = client.get(page).content.decode()
    assert "1.1 (deployed to production" in body and "acme/app #3</a>" in body
