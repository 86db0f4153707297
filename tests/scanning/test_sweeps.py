"""The scheduler's scanning sweeps, driven through ``tick(now)``: accepted risks reopen when
they expire, and overdue findings alert by webhook (real loopback receiver) and email (the
real SMTP sink) once per finding per day."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from bastion.browser.models import MailMessage
from bastion.core import notifications, scheduler
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, NotificationDelivery
from bastion.scanning import services
from bastion.scanning.models import Finding, FindingState, Scan, Target, Triage
from tests.factories import make_org, make_project, make_user
from tests.receivers import smtp_sink, webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> tuple[Principal, Target]:
    owner = make_user()
    org = make_org(owner)
    target = Target.objects.create(
        project=make_project(org), name="shop", base_url="http://127.0.0.1:9/"
    )
    return Principal.of_user(owner), target


def _finding(target: Target, n: int, severity: str, age: timedelta) -> Finding:
    scan = Scan.objects.create(target=target)
    return Finding.objects.create(
        target=target,
        fingerprint=f"finding:v1:{n}",
        type="missing-hsts",
        title=f"Missing HSTS {n}",
        severity=severity,
        url=target.base_url,
        first_seen_scan=scan,
        last_seen_scan=scan,
        first_seen_at=timezone.now() - age,
    )


def test_an_accepted_risk_reopens_when_it_expires(world: tuple[Principal, Target]) -> None:
    principal, target = world
    finding = _finding(target, 1, "low", timedelta(days=1))
    until = timezone.now() + timedelta(days=7)
    services.triage_finding(
        principal,
        finding,
        triage=Triage.ACCEPTED_RISK,
        reason="WAF covers it",
        accepted_until=until,
    )
    scheduler.tick(until - timedelta(minutes=1))
    finding.refresh_from_db()
    assert finding.triage == Triage.ACCEPTED_RISK and finding.state == FindingState.NEW

    scheduler.tick(until + timedelta(minutes=1))
    finding.refresh_from_db()
    assert finding.triage == Triage.NONE and finding.state == FindingState.REOPENED
    event = AuditEvent.objects.get(action="finding.risk_expired", object_id=str(finding.pk))
    assert event.actor_label == "scheduler"
    scheduler.tick(until + timedelta(minutes=2))
    assert AuditEvent.objects.filter(action="finding.risk_expired").count() == 1


# Committed transactions: the SMTP sink stores mail from its own thread and connection, which
# in-memory SQLite's shared cache would lock out of tables the test's open transaction wrote.
@pytest.mark.django_db(transaction=True)
def test_overdue_findings_alert_by_webhook_and_email_once_a_day(
    world: tuple[Principal, Target], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    principal, target = world
    organization = target.project.organization
    overdue = _finding(target, 1, "high", timedelta(days=15))  # high: 14 days
    _finding(target, 2, "high", timedelta(days=12))  # not due before the last tick
    dismissed = _finding(target, 3, "medium", timedelta(days=90))
    Finding.objects.filter(pk=dismissed.pk).update(triage=Triage.FALSE_POSITIVE)  # never overdue
    now = timezone.now()
    with webhook_receiver() as receiver, smtp_sink() as smtp_port:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_port
        notifications.create_channel(
            principal, organization, name="hook", kind="webhook", target=receiver.url,
            topics=["scanning.*"], secret="hook-secret",
        )  # fmt: skip
        notifications.create_channel(
            principal, organization, name="mail", kind="email", target="sec@acme.test",
            topics=["scanning.finding.overdue"],
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            scheduler.tick(now)
        (request,) = receiver.wait_for(1)
        body = json.loads(request.body)
        assert body["data"]["finding_id"] == overdue.pk
        assert body["data"]["severity"] == "high"
        assert f"/scanning/findings/{overdue.pk}/" in body["url"]
        assert request.headers["x-bastion-event"] == "scanning.finding.overdue"

        with django_capture_on_commit_callbacks(execute=True):
            scheduler.tick(now + timedelta(hours=6))  # same day: nothing new, nothing suppressed
        assert len(receiver.requests) == 1
        assert NotificationDelivery.objects.count() == 2

        # A day passes: tick(now) moves the sweep's clock; notify's dedupe window reads the wall
        # clock, so the first deliveries are moved back a day as well.
        NotificationDelivery.objects.update(created_at=F("created_at") - timedelta(days=1))
        with django_capture_on_commit_callbacks(execute=True):
            scheduler.tick(now + timedelta(days=1, minutes=1))  # alerted again
        assert len(receiver.wait_for(2)) == 2
    mails = MailMessage.objects.order_by("pk")
    assert [m.recipients for m in mails] == [["sec@acme.test"], ["sec@acme.test"]]
    assert "Overdue high finding on shop" in mails[0].subject
    assert AuditEvent.objects.filter(action="finding.overdue_alert").count() == 2
    overdue.refresh_from_db()
    assert overdue.overdue_alerted_at == now + timedelta(days=1, minutes=1)
