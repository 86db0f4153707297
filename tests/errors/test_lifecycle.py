"""Issue lifecycle through real ingest: resolve (now / in next release), ignore (forever, until
a date, N more events, N more users), regressions reopened and marked, every change audited."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.errors import services
from bastion.errors.ingest import prepare_event
from bastion.errors.models import Event, Issue, IssueStatus, Resolution, RuleKind
from bastion.errors.store import PendingWrite, store_batch
from tests.errors.conftest import Setup
from tests.errors.helpers import event_payload, send_event
from tests.factories import make_member


def _first_issue(client: Client, setup: Setup, **fields: object) -> Issue:
    send_event(client, setup, **fields)
    return Issue.objects.get(project=setup.project)


def _write(setup: Setup, kind: str) -> PendingWrite:
    now = datetime.now(tz=UTC)
    payload = event_payload(exception={"values": [{"type": kind, "value": "boom"}]})
    event = prepare_event(json.dumps(payload).encode(), uuid.uuid4(), setup.key, now, None)
    return PendingWrite(project_id=setup.project.pk, received_at=now, event=event)


def _owner(setup: Setup) -> Principal:
    return Principal.of_user(setup.owner)


def test_resolved_issue_that_recurs_is_reopened_marked_and_audited(
    client: Client, setup: Setup
) -> None:
    issue = _first_issue(client, setup)
    services.resolve_issue(_owner(setup), issue)
    issue.refresh_from_db()
    assert (issue.status, issue.resolution) == (IssueStatus.RESOLVED, Resolution.NOW)
    send_event(client, setup, release="2.0")
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED
    assert issue.regressed and issue.regressed_at is not None
    assert issue.resolution == Resolution.NONE
    assert issue.event_count == 2
    row = AuditEvent.objects.get(action="errors.issue.regressed")
    assert row.actor_label == "errors.ingest" and row.object_id == str(issue.pk)
    assert row.organization_id == setup.org.pk and "2.0" in row.changes["reason"]
    client.force_login(setup.owner)
    page = client.get(f"/o/{setup.org.slug}/errors/{setup.project.slug}/issues/{issue.pk}/")
    assert 'data-testid="regressed"' in page.content.decode()
    # Reopening or resolving again by hand clears the mark; the regression date stays.
    services.resolve_issue(_owner(setup), issue)
    issue.refresh_from_db()
    assert not issue.regressed and issue.regressed_at is not None


def test_resolved_in_next_release_regresses_only_on_a_new_release(
    client: Client, setup: Setup
) -> None:
    issue = _first_issue(client, setup, release="1.0")
    services.resolve_issue(_owner(setup), issue, in_next_release=True)
    send_event(client, setup, release="1.0")  # the old release, still deployed somewhere
    send_event(client, setup)  # no release: cannot tell
    issue.refresh_from_db()
    assert (issue.status, issue.resolution) == (IssueStatus.RESOLVED, Resolution.NEXT_RELEASE)
    assert issue.event_count == 3 and not issue.regressed
    send_event(client, setup, release="1.1")
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED and issue.regressed
    assert issue.releases == ["1.0", "1.1"]
    assert AuditEvent.objects.filter(action="errors.issue.regressed").count() == 1


def test_ignored_until_n_more_events(client: Client, setup: Setup) -> None:
    issue = _first_issue(client, setup)
    services.ignore_issue(_owner(setup), issue, more_events=2)
    issue.refresh_from_db()
    assert issue.ignore_until_events == 3
    send_event(client, setup)
    issue.refresh_from_db()
    assert issue.status == IssueStatus.IGNORED
    send_event(client, setup)
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED and not issue.regressed
    assert issue.ignore_until_events is None
    row = AuditEvent.objects.get(action="errors.issue.unignored")
    assert row.changes == {"reason": "event count reached"}


def test_ignored_until_n_more_users(client: Client, setup: Setup) -> None:
    issue = _first_issue(client, setup, user={"id": "u1"})
    services.ignore_issue(_owner(setup), issue, more_users=2)
    for _ in range(3):  # the same user again and again: no new user
        send_event(client, setup, user={"id": "u1"})
    send_event(client, setup, user={"id": "u2"})
    issue.refresh_from_db()
    assert issue.status == IssueStatus.IGNORED and issue.users_affected == 2
    send_event(client, setup, user={"id": "u3"})
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED
    assert AuditEvent.objects.get(action="errors.issue.unignored").changes == {
        "reason": "user count reached"
    }


def test_ignored_until_a_date(client: Client, setup: Setup) -> None:
    issue = _first_issue(client, setup)
    until = timezone.now() + timedelta(hours=1)
    services.ignore_issue(_owner(setup), issue, until=until)
    send_event(client, setup)
    issue.refresh_from_db()
    assert issue.status == IssueStatus.IGNORED and issue.ignore_until == until
    # The hour passes (the row is moved instead of the clock).
    Issue.objects.filter(pk=issue.pk).update(ignore_until=timezone.now() - timedelta(seconds=1))
    send_event(client, setup)
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED and issue.ignore_until is None


def test_ignored_forever_stays_ignored(client: Client, setup: Setup) -> None:
    issue = _first_issue(client, setup)
    services.set_issue_status(_owner(setup), issue, IssueStatus.IGNORED)
    for n in range(3):
        send_event(client, setup, user={"id": f"u{n}"})
    issue.refresh_from_db()
    assert issue.status == IssueStatus.IGNORED and issue.event_count == 4
    assert not AuditEvent.objects.filter(action="errors.issue.unignored").exists()


def test_bad_ignore_conditions_and_roles_change_nothing(client: Client, setup: Setup) -> None:
    issue = _first_issue(client, setup)
    viewer = Principal.of_user(make_member(setup.org, Role.VIEWER))
    audited = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        services.ignore_issue(_owner(setup), issue, until=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ValidationError):
        services.ignore_issue(_owner(setup), issue, more_events=0)
    with pytest.raises(ValidationError):
        services.ignore_issue(_owner(setup), issue, more_users=-3)
    with pytest.raises(PermissionDenied):
        services.resolve_issue(viewer, issue)
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED
    assert AuditEvent.objects.count() == audited


def test_status_form_resolve_next_release_and_ignore_conditions(
    client: Client, setup: Setup
) -> None:
    issue = _first_issue(client, setup, release="1.0")
    client.force_login(setup.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/issues/{issue.pk}/"
    response = client.post(base + "status/", {"status": "resolved", "in_next_release": "1"})
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.resolution == Resolution.NEXT_RELEASE
    assert "next release" in client.get(base).content.decode()
    client.post(base + "status/", {"status": "ignored", "ignore_for": "events", "count": "5"})
    issue.refresh_from_db()
    assert (issue.status, issue.ignore_until_events, issue.resolution) == ("ignored", 6, "")
    page = client.get(base).content.decode()
    assert "until 6 events" in page
    client.post(base + "status/", {"status": "ignored", "ignore_for": "users", "count": "x"})
    client.post(base + "status/", {"status": "ignored", "ignore_for": "until", "until": "soon"})
    issue.refresh_from_db()
    assert issue.ignore_until_events == 6 and issue.ignore_until is None  # unchanged
    later = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    client.post(base + "status/", {"status": "ignored", "ignore_for": "until", "until": later})
    issue.refresh_from_db()
    assert issue.ignore_until is not None and issue.ignore_until_events is None
    assert AuditEvent.objects.filter(action="errors.issue.ignored").count() == 2


def test_lifecycle_and_rules_add_no_query_to_the_usual_ingest(client: Client, setup: Setup) -> None:
    send_event(client, setup)
    send_event(client, setup)  # caches warm
    with CaptureQueriesContext(connection) as baseline:
        send_event(client, setup)
    services.create_ignore_rule(
        _owner(setup), setup.project, kind=RuleKind.EXCEPTION_TYPE, value="Nope", reason="r"
    )
    send_event(client, setup)  # the rule cache refills
    with CaptureQueriesContext(connection) as with_rule:
        send_event(client, setup)
    assert len(with_rule.captured_queries) == len(baseline.captured_queries)


def test_one_batch_regresses_once_and_counts_each_suppressed_event(setup: Setup) -> None:
    """Group commit stores many events in one transaction: the first event of a resolved issue
    reopens it (one audit row), the others only count; suppressed ones count on their rule."""
    first = _write(setup, "AError")
    store_batch([first])
    issue = Issue.objects.get()
    services.resolve_issue(_owner(setup), issue)
    rule = services.create_ignore_rule(
        _owner(setup), setup.project, kind=RuleKind.EXCEPTION_TYPE, value="BError", reason="r"
    )
    batch = [_write(setup, "AError") for _ in range(3)] + [
        _write(setup, "BError") for _ in range(2)
    ]
    assert store_batch(batch) == [True] * 5
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED and issue.event_count == 4
    assert AuditEvent.objects.filter(action="errors.issue.regressed").count() == 1
    rule.refresh_from_db()
    assert rule.match_count == 2 and rule.last_matched_at == batch[-1].received_at
    assert Event.objects.filter(suppressed_by=rule).count() == 2
