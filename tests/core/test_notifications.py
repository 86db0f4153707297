"""Notifications end to end: real loopback webhook receivers, the real SMTP sink, the API and page."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from bastion.browser.models import MailMessage
from bastion.core import notifications
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, NotificationDelivery, Role
from bastion.core.notifications import Message, notify
from tests.factories import PASSWORD, make_member, make_org, make_project, make_user
from tests.receivers import smtp_sink, webhook_receiver

pytestmark = pytest.mark.django_db

OVERDUE = Message(
    topic="scanning.finding.overdue",
    subject="Finding 7 is overdue",
    text="Reflected XSS on /search is 3 days past its SLA.",
    url="http://127.0.0.1:8000/o/acme/scanning/findings/7/",
    data={"finding_id": 7},
)


@pytest.fixture
def org() -> Any:
    return make_org(make_user("owner"), slug="acme")


@pytest.fixture
def owner(org: Any) -> Principal:
    return Principal.of_user(org.memberships.get().user)


def test_a_signed_webhook_receives_the_message_after_commit(
    org: Any, owner: Principal, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver() as receiver:
        notifications.create_channel(
            owner, org, name="ops", kind="webhook", target=receiver.url,
            topics=["scanning.*"], secret="s3cret-key",
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                notify(org, OVERDUE)
                assert receiver.requests == []  # nothing leaves before the commit
        (request,) = receiver.wait_for(1)
    expected = "sha256=" + hmac.new(b"s3cret-key", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-bastion-signature"] == expected
    assert request.headers["x-bastion-event"] == "scanning.finding.overdue"
    body = json.loads(request.body)
    assert body["subject"] == "Finding 7 is overdue"
    assert body["data"] == {"finding_id": 7}
    assert body["organization"] == "acme"
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_nothing_is_sent_for_work_that_rolled_back(
    org: Any, owner: Principal, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver() as receiver:
        notifications.create_channel(
            owner, org, name="ops", kind="webhook", target=receiver.url, topics=["*"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError), transaction.atomic():
                notify(org, OVERDUE)
                raise RuntimeError("the action failed")
        assert receiver.requests == []
    assert not NotificationDelivery.objects.exists()


def test_slack_compatible_hook_gets_text_with_a_link(
    org: Any, owner: Principal, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver() as receiver:
        notifications.create_channel(
            owner, org, name="chat", kind="slack", target=receiver.url, topics=["scanning.*"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            notify(org, OVERDUE)
        (request,) = receiver.wait_for(1)
    text = json.loads(request.body)["text"]
    assert text.startswith("*Finding 7 is overdue*")
    assert f"<{OVERDUE.url}|Open in Bastion>" in text


@pytest.mark.django_db(transaction=True)
def test_email_lands_in_the_real_smtp_sink(settings: Any) -> None:
    org = make_org(make_user("mailer"), slug="mailorg")
    owner = Principal.of_user(org.memberships.get().user)
    with smtp_sink() as port:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        notifications.create_channel(
            owner, org, name="sec", kind="email", target="sec@acme.test, lead@acme.test",
            topics=["scanning.finding.*"],
        )  # fmt: skip
        notify(org, OVERDUE)
    message = MailMessage.objects.get()
    assert message.subject == "[Bastion] Finding 7 is overdue"
    assert sorted(message.recipients) == ["lead@acme.test", "sec@acme.test"]
    assert OVERDUE.url.encode() in bytes(message.raw)
    assert NotificationDelivery.objects.get().status == "sent"


def test_a_storm_with_one_dedupe_key_sends_one_message(
    org: Any, owner: Principal, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver() as receiver:
        notifications.create_channel(
            owner, org, name="ops", kind="webhook", target=receiver.url, topics=["*"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(300):
                notify(org, OVERDUE, dedupe_key="finding:7", window=timedelta(minutes=30))
        assert len(receiver.wait_for(1)) == 1
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.suppressed_count) == ("sent", 299)


def test_distinct_messages_past_the_per_minute_ceiling_are_held_back(
    org: Any, owner: Principal, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ceiling = settings.CONFIG.notify_max_per_minute
    with webhook_receiver() as receiver:
        notifications.create_channel(
            owner, org, name="ops", kind="webhook", target=receiver.url, topics=["*"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(ceiling + 5):
                notify(org, Message(topic="errors.issue.new", subject=f"issue {n}"))
        assert len(receiver.wait_for(ceiling)) == ceiling
    statuses = list(NotificationDelivery.objects.values_list("status", flat=True))
    assert statuses.count("sent") == ceiling
    assert statuses.count("suppressed") == 5


def test_a_personal_message_is_one_email_folded_and_capped_like_a_channels(
    org: Any, settings: Any
) -> None:
    bob = make_member(org, Role.MEMBER, "bob")
    note = Message(topic="errors.issue.assigned", subject="You have an issue")
    first = notifications.notify_user(org, bob, note, dedupe_key="k", window=timedelta(minutes=5))
    assert first is not None and (first.recipient, first.channel) == (bob, None)
    assert first.destination == "email to bob"
    again = notifications.notify_user(org, bob, note, dedupe_key="k", window=timedelta(minutes=5))
    assert again is None
    first.refresh_from_db()
    assert first.suppressed_count == 1
    for n in range(settings.CONFIG.notify_max_per_minute + 2):
        notifications.notify_user(org, bob, Message(topic="t", subject=f"note {n}"))
    assert NotificationDelivery.objects.filter(recipient=bob, status="suppressed").count() == 3
    no_address = make_user("nomail", email="")
    assert notifications.notify_user(org, no_address, note) is None
    client = Client()
    client.force_login(org.memberships.get(role=Role.OWNER).user)
    listed = client.get("/api/v1/organizations/acme/notification-deliveries").json()
    assert "email to bob" in {d["channel"] for d in listed}
    page = client.get("/o/acme/settings/notifications/").content.decode()
    assert "email to bob" in page


def test_topics_and_projects_choose_the_channels(
    org: Any, owner: Principal, django_capture_on_commit_callbacks: Any
) -> None:
    shop, blog = make_project(org, "shop"), make_project(org, "blog")
    with webhook_receiver() as receiver:
        notifications.create_channel(
            owner, org, name="shop-errors", kind="webhook", target=receiver.url,
            topics=["errors.*"], projects=[shop],
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            notify(org, Message(topic="errors.issue.new", subject="blog"), project=blog)
            notify(org, Message(topic="browser.run.failed", subject="run"), project=shop)
            notify(org, Message(topic="errors.issue.new", subject="shop"), project=shop)
        (only,) = receiver.wait_for(1)
    assert json.loads(only.body)["subject"] == "shop"


def test_a_refusing_receiver_is_retried_with_backoff_until_it_accepts(
    org: Any, owner: Principal, django_capture_on_commit_callbacks: Any
) -> None:
    with webhook_receiver(status=503) as receiver:
        notifications.create_channel(
            owner, org, name="ops", kind="webhook", target=receiver.url, topics=["*"]
        )
        with django_capture_on_commit_callbacks(execute=True):
            notify(org, OVERDUE)
        delivery = NotificationDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "503" in delivery.error
        assert notifications.retry_failed(timezone.now()) == 0  # back-off not over yet
        receiver.status = 200
        assert notifications.retry_failed(timezone.now() + timedelta(minutes=1)) == 1
        assert len(receiver.requests) == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_link_local_and_metadata_addresses_are_never_called(
    org: Any, owner: Principal, django_capture_on_commit_callbacks: Any
) -> None:
    notifications.create_channel(
        owner, org, name="meta", kind="webhook",
        target="http://169.254.169.254/latest/meta-data/", topics=["*"],
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        notify(org, OVERDUE)
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == "failed"
    assert "169.254.169.254" in delivery.error


def test_bad_channels_are_refused_and_nothing_is_written(org: Any, owner: Principal) -> None:
    from django.core.exceptions import ValidationError

    for kind, target, topics in [
        ("email", "not-an-address", ["*"]),
        ("webhook", "ftp://127.0.0.1/x", ["*"]),
        ("slack", "http://127.0.0.1/x", []),
        ("pager", "http://127.0.0.1/x", ["*"]),
    ]:
        with pytest.raises(ValidationError):
            notifications.create_channel(
                owner, org, name="x", kind=kind, target=target, topics=topics
            )
    assert not org.notification_channels.exists()
    assert not AuditEvent.objects.filter(action__startswith="notification_channel").exists()


def test_api_hides_targets_and_secrets_and_needs_an_admin(org: Any) -> None:
    admin = make_member(org, Role.ADMIN, "alice")
    viewer = make_member(org, Role.VIEWER, "victor")
    client = Client()
    client.login(username=viewer.username, password=PASSWORD)
    payload = {
        "name": "chat",
        "kind": "slack",
        "target": "http://127.0.0.1:9/services/T000/B000/XXXXSECRETXXXX",
        "topics": ["errors.*"],
    }
    url = "/api/v1/organizations/acme/notification-channels"
    assert client.post(url, payload, content_type="application/json").status_code == 403
    client.login(username=admin.username, password=PASSWORD)
    created = client.post(url, payload, content_type="application/json")
    assert created.status_code == 201, created.content
    assert "XXXXSECRETXXXX" not in created.content.decode()
    assert created.json()["target"] == "http://127.0.0.1:9/…"
    listed = client.get(url).json()
    assert [c["name"] for c in listed] == ["chat"]
    assert "XXXXSECRETXXXX" not in json.dumps(listed)
    audit = AuditEvent.objects.get(action="notification_channel.create")
    assert "XXXXSECRETXXXX" not in json.dumps(audit.changes)
    channel_id = created.json()["id"]
    paused = client.patch(
        f"{url}/{channel_id}", {"enabled": False}, content_type="application/json"
    )
    assert paused.json()["enabled"] is False
    assert client.delete(f"{url}/{channel_id}").status_code == 204


def test_settings_page_adds_a_channel_and_sends_a_test(
    org: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    client.login(username="owner", password=PASSWORD)
    empty = client.get("/o/acme/settings/notifications/")
    assert b"No notification channels" in empty.content
    with webhook_receiver() as receiver:
        response = client.post(
            "/o/acme/settings/notifications/new/",
            {
                "name": "ops",
                "kind": "webhook",
                "target": receiver.url,
                "topics": "errors.* browser.*",
            },
        )
        assert response.status_code == 302
        channel = org.notification_channels.get()
        assert channel.topics == ["errors.*", "browser.*"]
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/o/acme/settings/notifications/{channel.pk}/test/")
        (request,) = receiver.wait_for(1)
    assert json.loads(request.body)["topic"] == "core.channel.test"
    page = client.get("/o/acme/settings/notifications/").content.decode()
    assert "Test message for ops" in page
    assert receiver.url not in page  # the stored URL is never shown back
    invalid = client.post(
        "/o/acme/settings/notifications/new/",
        {"name": "bad", "kind": "email", "target": "nope", "topics": "*"},
    )
    assert invalid.status_code == 400
    assert b"Not an email address" in invalid.content
