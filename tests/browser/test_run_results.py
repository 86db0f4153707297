"""A finished run's results: JUnit XML over the API and from the run page, and the failure
notification (``browser.run.failed``) with a link to the run, by signed webhook and by email
through the real SMTP sink; a passing run announces nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.urls import reverse

from bastion.browser import runs, services
from bastion.browser.models import MailMessage, RunStatus
from bastion.core import notifications
from bastion.core.models import NotificationDelivery
from tests.api.conftest import ApiClient
from tests.browser.test_runs import _agent_runs, _suite
from tests.factories import make_project
from tests.jobs.helpers import World
from tests.receivers import smtp_sink, webhook_receiver
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db(transaction=True)


def _finished_suite_run(world: World, statuses: dict[str, str]) -> runs.BrowserRun:
    project = make_project(world.org, slug="shop")
    suite = _suite(world, project, list(statuses), concurrency=1)
    environment = services.create_environment(
        world.principal, project, slug="staging", name="Staging", base_url="http://127.0.0.1:9"
    )
    run = runs.start_run(
        world.principal, project, runs.RunRequest(suite=suite, environment=environment)
    )
    agent, _ = world.agent()
    _agent_runs(agent, statuses)
    run.refresh_from_db()
    return run


def test_a_failed_run_is_announced_by_webhook_and_email_with_a_link(settings: Any) -> None:
    world = World(cluster_name="default")
    with webhook_receiver() as receiver, smtp_sink() as port:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        notifications.create_channel(
            world.principal, world.org, name="qa", kind="webhook", target=receiver.url,
            topics=["browser.*"], secret="hook-secret",
        )  # fmt: skip
        notifications.create_channel(
            world.principal, world.org, name="qa mail", kind="email", target="qa@acme.test",
            topics=["browser.run.failed"],
        )  # fmt: skip
        run = _finished_suite_run(world, {"home": "passed", "checkout": "failed"})
        assert run.status == RunStatus.FAILED
        (request,) = receiver.wait_for(1)
    link = f"/o/{world.org.slug}/browser/shop/runs/{run.pk}/"
    expected = "sha256=" + hmac.new(b"hook-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-bastion-signature"] == expected
    assert request.headers["x-bastion-event"] == "browser.run.failed"
    body = json.loads(request.body)
    assert body["url"].endswith(link) and body["url"].startswith("http")
    assert body["subject"] == f"Browser run #{run.pk} failed: suite Smoke on Staging (Project)"
    assert body["data"]["failures"] == [{"test": "checkout", "status": "failed", "error": ""}]
    assert body["data"]["environment"] == "staging" and body["data"]["tests"] == 2
    mail = MailMessage.objects.get(recipients=["qa@acme.test"])
    assert mail.subject == f"[Bastion] {body['subject']}"
    assert link.encode() in bytes(mail.raw) and b"checkout: failed" in bytes(mail.raw)
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_passing_run_announces_nothing() -> None:
    world = World(cluster_name="default")
    with webhook_receiver() as receiver:
        notifications.create_channel(
            world.principal, world.org, name="qa", kind="webhook", target=receiver.url,
            topics=["*"],
        )  # fmt: skip
        run = _finished_suite_run(world, {"home": "passed"})
    assert run.status == RunStatus.PASSED
    assert not NotificationDelivery.objects.exists() and receiver.requests == []


def test_junit_xml_over_the_api_and_from_the_run_page() -> None:
    world = World(cluster_name="default")
    run = _finished_suite_run(world, {"home": "passed", "checkout": "failed"})
    api = ApiClient(user=world.owner)
    reply = api.get(f"/organizations/{world.org.slug}/projects/shop/browser/runs/{run.pk}/junit")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(reply.raw)  # noqa: S314 - our own output
    assert root.get("name") == f"shop suite smoke on staging #{run.pk}"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"home", "checkout"}
    assert suites["checkout"].get("failures") == "1" and suites["home"].get("failures") == "0"
    assert suites["checkout"].find("testcase/failure") is not None
    client = login_client(world.owner)
    kwargs = {"org": world.org.slug, "project": "shop", "run_id": run.pk}
    page = client.get(reverse("web:browser-run", kwargs=kwargs)).content.decode()
    junit_url = reverse("web:browser-run-junit", kwargs=kwargs)
    assert junit_url in page
    download = client.get(junit_url)
    assert download.status_code == 200 and download.content == reply.raw
    assert download["Content-Disposition"] == (
        f'attachment; filename="browser-run-{run.pk}-junit.xml"'
    )
    other = World(cluster_name="default")
    outsider = ApiClient(user=other.owner)
    url = f"/organizations/{world.org.slug}/projects/shop/browser/runs/{run.pk}/junit"
    assert outsider.get(url).status == 404
