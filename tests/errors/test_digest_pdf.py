"""The weekly review digest (fired by its core Schedule, mailed through the real SMTP sink) and
the review-coverage PDF (rendered by Chromium, read back with pypdf)."""

from __future__ import annotations

import email
import email.policy
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from bastion.browser.models import MailMessage
from bastion.core import scheduler
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Organization, Role, Schedule
from bastion.errors import actions, services
from bastion.errors.digest import last_week, recipients_for
from bastion.errors.models import Issue
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.errors.receivers import smtp_to_sink
from tests.factories import make_member

pytestmark = pytest.mark.slow


def _week_of_issues(client: Client, setup: Setup) -> tuple[Issue, Issue]:
    """Two issues first seen three days ago: one reviewed by the owner, one only viewed."""
    for kind in ("KeyError", "TimeoutError"):
        send_event(client, setup, exception={"values": [{"type": kind, "value": "boom"}]})
    Issue.objects.update(first_seen=timezone.now() - timedelta(days=3))
    reviewed = Issue.objects.get(title__startswith="KeyError")
    unreviewed = Issue.objects.get(title__startswith="TimeoutError")
    services.mark_reviewed(Principal.of_user(setup.owner), reviewed, "known bug, fix in 1.2")
    viewer = make_member(setup.org, Role.VIEWER, username="vera")
    services.record_view(Principal.of_user(viewer), unreviewed)
    return reviewed, unreviewed


def test_weekly_digest_is_fired_by_its_schedule_and_mailed(transactional_db: None) -> None:
    setup = make_setup()
    client = Client()
    reviewed, unreviewed = _week_of_issues(client, setup)
    spec = actions.DigestSpec(True, "0 8 * * 1", "UTC", ["auditor@inbox.bastion.test"])
    actions.update_digest(Principal.of_user(setup.owner), setup.org, spec)
    due = timezone.now() - timedelta(minutes=1)
    Schedule.objects.filter(kind="errors.digest").update(next_run_at=due)
    with smtp_to_sink():
        assert scheduler.fire_due_schedules(timezone.now()) == 1
    mail = MailMessage.objects.get(inbox="auditor@inbox.bastion.test")
    assert mail.subject.startswith("[Bastion] Error review digest for")
    assert "2 new or regressed, 1 never reviewed" in mail.subject
    parsed = email.message_from_bytes(bytes(mail.raw), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    text = str(parsed.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    html = str(parsed.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    assert f"Reviewed by {setup.owner.username}" in text
    assert "NEVER REVIEWED (viewed by vera)" in text
    slug = f"/o/{setup.org.slug}/errors/{setup.project.slug}"
    assert f"{slug}/issues/{unreviewed.pk}/" in text and f"{slug}/issues/{reviewed.pk}/" in html
    period = last_week(due, "UTC")
    assert f"{slug}/review-coverage/?from={period.start}&to={period.end}" in text
    assert "never reviewed" in html
    sent = AuditEvent.objects.get(action="errors.digest.sent")
    assert sent.changes["issues"] == 2 and sent.changes["never_reviewed"] == 1
    assert Schedule.objects.get(kind="errors.digest").next_run_at > timezone.now()


def test_digest_goes_to_owners_and_admins_without_configured_recipients(
    transactional_db: None,
) -> None:
    setup = make_setup()
    admin = make_member(setup.org, Role.ADMIN)
    make_member(setup.org, Role.MEMBER)
    expected = sorted(u.email.lower() for u in (setup.owner, admin) if u.email)
    assert expected and recipients_for(setup.org) == expected
    assert recipients_for(Organization.objects.create(name="Empty", slug="empty")) == []


def test_review_coverage_pdf(client: Client, setup: Setup) -> None:
    reviewed, unreviewed = _week_of_issues(client, setup)
    client.force_login(setup.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/review-coverage/"
    page = client.get(base)
    assert b"format=pdf" in page.content
    response = client.get(base, {"format": "pdf"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].endswith('.pdf"')
    reader = PdfReader(io.BytesIO(response.content))
    raw = " ".join(page.extract_text() for page in reader.pages)
    text = " ".join(raw.replace("\ufb01", "fi").split())  # ligatures and line wraps
    assert "Error review coverage" in text
    assert reviewed.title in text and unreviewed.title in text
    assert "never reviewed" in text and "known bug, fix in 1.2" in text
    assert f"by user:{setup.owner.username}" in text  # who generated it
    assert "Page 1 of" in text
    other = make_setup()
    client.force_login(other.owner)
    assert client.get(base, {"format": "pdf"}).status_code == 404
