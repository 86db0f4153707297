"""The fake inbox: mail to a run's addresses is filed under the run's organization, read through
the API and the pages (HTML sandboxed, attachments downloaded), and a running job reads only
the mail to its own run's addresses with its job token."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from bastion.browser import runs, services
from bastion.browser.mail.sink import prune_messages
from bastion.browser.models import BrowserRun, MailMessage, MailToken
from bastion.core import scheduler
from bastion.jobs.models import Job
from tests.api.conftest import ApiClient
from tests.browser.inbox_helpers import deliver, run_address
from tests.factories import make_member, make_project
from tests.jobs.helpers import World
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db
TEST = {"name": "mail", "start_url": "/", "steps": [{"log": "hi"}]}


def _run(world: World, slug: str = "shop") -> BrowserRun:
    project = make_project(world.org, slug=slug)
    test = services.save_test(world.principal, project, TEST)
    return runs.start_run(world.principal, project, runs.RunRequest(test=test, video=False))


def test_every_test_of_a_run_gets_its_own_addresses_and_the_job_carries_them() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    for name in ("one", "two", "three"):
        services.save_test(world.principal, project, {**TEST, "name": name})
    suite = services.create_suite(
        world.principal, project, slug="all", tests=["one", "two", "three"], concurrency=2
    )
    first = runs.start_run(world.principal, project, runs.RunRequest(suite=suite))
    second = runs.start_run(world.principal, project, runs.RunRequest(suite=suite))
    tokens = list(MailToken.objects.values_list("token", flat=True))
    assert len(tokens) == 6 and len(set(tokens)) == 6
    payloads = [job.payload for run in (first, second) for job in runs.run_jobs(run)]
    assert sorted(t for p in payloads for t in p["run_ids"]) == sorted(tokens)
    assert all(len(p["run_ids"]) == len(p["tests"]) for p in payloads)
    assert {p["mail_domain"] for p in payloads} == {settings.CONFIG.mail_domain}


def test_mail_to_a_run_address_is_filed_under_the_runs_organization() -> None:
    world = World(cluster_name="default")
    run = _run(world)
    address = run_address(run)
    label = run_address(run, label="buyer")
    filed = deliver([address])
    assert (filed.organization_id, filed.run_id, filed.inbox) == (world.org.pk, run.pk, address)
    # Several recipients: filed under the run's address, wherever it is in the list.
    second = deliver(["boss@example.test", label.upper()])
    assert (second.organization_id, second.inbox) == (world.org.pk, label)
    stray = deliver([f"someone@{settings.CONFIG.mail_domain}"])
    unknown = deliver([f"run-0123456789ab@{settings.CONFIG.mail_domain}"])
    assert stray.organization_id is None and unknown.organization_id is None


def test_inbox_api_lists_filters_and_reads_one_in_its_own_organization_only() -> None:
    world, other = World(cluster_name="default"), World(cluster_name="default")
    run, foreign = _run(world), _run(other, slug="theirs")
    mine = deliver([run_address(run)])
    deliver([run_address(run, label="buyer")], subject="Your receipt")
    theirs = deliver([run_address(foreign)])
    client = ApiClient(user=world.owner)
    base = f"/organizations/{world.org.slug}/inbox"
    listed = client.get(base)
    assert listed.status == 200 and len(listed.body) == 2
    only = client.get(base + f"?address={run_address(run).upper()}")
    assert [m["id"] for m in only.body] == [mine.pk]
    assert only.body[0]["run_id"] == run.pk and only.body[0]["to"] == run_address(run)
    one = client.get(f"{base}/{mine.pk}")
    assert one.status == 200
    assert "Your code is 424242." in one.body["text"] and "<b>424242</b>" in one.body["html"]
    assert {"name": "Subject", "value": "Confirm your sign-up"} in one.body["headers"]
    assert one.body["attachments"] == [
        {"index": 0, "filename": "terms.txt", "content_type": "text/plain", "size": 16}
    ]
    download = client.get(f"{base}/{mine.pk}/attachments/0")
    assert download.status == 200 and download.raw == b"Terms: be nice.\n"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert "attachment" in download.headers["Content-Disposition"]
    assert client.get(f"{base}/{mine.pk}/attachments/1").status == 404
    assert client.get(f"{base}/{theirs.pk}").status == 404
    assert client.get(f"/organizations/{other.org.slug}/inbox").status == 404


def test_inbox_pages_show_the_message_sandboxed_and_its_attachment() -> None:
    world = World(cluster_name="default")
    run = _run(world)
    message = deliver([run_address(run)])
    viewer = login_client(make_member(world.org, "viewer"))
    listing = viewer.get(reverse("web:inbox", kwargs={"org": world.org.slug}))
    assert listing.status_code == 200
    assert "Confirm your sign-up" in listing.content.decode()
    empty = viewer.get(
        reverse("web:inbox", kwargs={"org": world.org.slug}), {"address": "nobody@x.test"}
    )
    assert "No mail to nobody@x.test" in empty.content.decode()
    kwargs = {"org": world.org.slug, "message_id": message.pk}
    page = viewer.get(reverse("web:inbox-message", kwargs=kwargs)).content.decode()
    assert 'sandbox=""' in page and "terms.txt" in page and "Your code is 424242." in page
    assert "<script>parent" not in page  # the HTML is only in the frame, never inline
    frame = viewer.get(reverse("web:inbox-message-html", kwargs=kwargs))
    policy = frame["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy and "img-src data:" in policy
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert b"<b>424242</b>" in frame.content
    file = viewer.get(reverse("web:inbox-attachment", kwargs={**kwargs, "part": 0}))
    assert file.status_code == 200 and file["Content-Disposition"].startswith("attachment")


def test_a_job_reads_its_own_run_addresses_only() -> None:
    world, other = World(cluster_name="default"), World(cluster_name="default")
    run, foreign = _run(world), _run(other, slug="theirs")
    agent, _ = world.agent()
    job, token = world.running(agent)
    assert job.origin == runs.origin_of(run)
    deliver([run_address(run)])
    deliver([run_address(foreign)])
    client = ApiClient()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    url = f"/agent/jobs/{job.pk}/mail"
    mine = client.get(f"{url}?address={run_address(run)}&since=0", **auth)
    assert mine.status == 200 and [m["subject"] for m in mine.body] == ["Confirm your sign-up"]
    assert "424242" in mine.body[0]["text"]
    later = client.get(f"{url}?address={run_address(run)}&since=4102444800", **auth)
    assert later.body == []
    refused = client.get(f"{url}?address={run_address(foreign)}", **auth)
    assert refused.status == 403 and "not an address of this job's run" in refused.body["detail"]
    stray = client.get(f"{url}?address=someone@{settings.CONFIG.mail_domain}", **auth)
    assert stray.status == 403
    other_job = Job.objects.exclude(pk=job.pk).first()
    assert other_job is not None
    assert client.get(f"/agent/jobs/{other_job.pk}/mail?address=x", **auth).status == 404
    assert client.get(f"{url}?address=x", HTTP_AUTHORIZATION="Token bstjob_nope").status == 401
    session = ApiClient(user=world.owner)  # a person's session is not a job token
    assert session.get(f"{url}?address={run_address(run)}").status == 401


def test_retention_prunes_old_mail() -> None:
    world = World(cluster_name="default")
    run = _run(world)
    old, new = deliver([run_address(run)]), deliver([run_address(run)])
    MailMessage.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=15))
    assert prune_messages(settings.CONFIG.mail_retention_days) == 1
    assert list(MailMessage.objects.values_list("pk", flat=True)) == [new.pk]


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_applies_the_retention_at_its_first_tick() -> None:
    world = World(cluster_name="default")
    run = _run(world)
    old, new = deliver([run_address(run)]), deliver([run_address(run)])
    MailMessage.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=30))
    stop = threading.Event()

    def loop() -> None:
        try:
            scheduler.run(stop, 0.2)
        finally:
            connections.close_all()  # this thread's own connections (PostgreSQL drops the db)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        for _ in range(100):  # at most ~20 s
            if not MailMessage.objects.filter(pk=old.pk).exists():
                break
            stop.wait(0.2)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert list(MailMessage.objects.values_list("pk", flat=True)) == [new.pk]
