"""The lifecycle, review and ignore-rule endpoints of /api/v1/: same actions as the pages,
same roles, scoped to the caller's organization."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from bastion.core.models import AuditEvent, Role
from bastion.errors.models import Event, IgnoreRule, Issue, IssueReview
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.errors.test_api_cli import _api, _token


def test_lifecycle_and_reviews_over_the_api(client: Client, setup: Setup) -> None:
    send_event(client, setup, release="1.0")
    issue = Issue.objects.get()
    token = _token(setup)
    base = f"{setup.org.slug}/projects/{setup.project.slug}/issues/{issue.pk}"
    resolved = _api(client, "post", f"{base}/resolve-in-next-release", token)
    assert resolved.status_code == 200
    assert resolved.json()["resolution"] == "next_release"
    send_event(client, setup, release="1.1")
    got = _api(client, "get", base, token).json()
    assert got["status"] == "unresolved" and got["regressed"] and got["regressed_at"]

    until = (timezone.now() + timedelta(days=1)).isoformat()
    snoozed = _api(client, "post", f"{base}/snooze", token, until=until, more_events=10)
    assert snoozed.status_code == 200
    body = snoozed.json()
    assert body["status"] == "ignored" and body["ignore_until_events"] == 12
    assert not body["regressed"] and body["ignore_until"]
    past = (timezone.now() - timedelta(days=1)).isoformat()
    assert _api(client, "post", f"{base}/snooze", token, until=past).status_code == 400
    assert _api(client, "post", f"{base}/snooze", token, more_users=0).status_code in (400, 422)

    created = _api(client, "post", f"{base}/reviews", token, comment="triaged")
    assert created.status_code == 201 and created.json()["comment"] == "triaged"
    listed = _api(client, "get", f"{base}/reviews", token).json()
    assert [r["user"] for r in listed] == ["token:t-owner"]  # a token reviews as itself

    today = timezone.localdate().isoformat()
    report = _api(
        client,
        "get",
        f"{setup.org.slug}/projects/{setup.project.slug}/review-coverage",
        token,
        **{"from": today, "to": today},
    )
    assert report.status_code == 200
    data = report.json()
    assert data["period"] == {"start": today, "end": today}
    assert data["issues"] == 1 and data["reviewed"] == 1 and data["never_reviewed"] == []

    viewer = _token(setup, Role.VIEWER)
    assert _api(client, "post", f"{base}/reviews", viewer, comment="x").status_code == 403
    assert _api(client, "post", f"{base}/resolve-in-next-release", viewer).status_code == 403
    assert IssueReview.objects.count() == 1
    assert AuditEvent.objects.filter(action="errors.issue.reviewed").count() == 1


def test_ignore_rules_over_the_api(client: Client, setup: Setup) -> None:
    token = _token(setup)
    rules = f"{setup.org.slug}/projects/{setup.project.slug}/ignore-rules"
    created = _api(
        client, "post", rules, token, kind="tag", value="env=staging", reason="staging noise"
    )
    assert created.status_code == 201
    assert created.json()["author"] == "token:t-owner"
    bad = _api(client, "post", rules, token, kind="message_regex", value="(", reason="r")
    assert bad.status_code == 400
    member = _token(setup, Role.MEMBER)
    refused = _api(client, "post", rules, member, kind="tag", value="a=b", reason="r")
    assert refused.status_code == 403
    event_id = send_event(client, setup, tags={"env": "staging"})
    assert Event.objects.get(event_id=event_id).suppressed_by_id == created.json()["id"]
    listed = _api(client, "get", rules, token).json()
    assert [(r["value"], r["match_count"]) for r in listed] == [("env=staging", 1)]
    assert listed[0]["last_matched_at"]

    other = make_setup()
    theirs = _token(other)
    assert _api(client, "get", rules, theirs).status_code == 404
    assert (
        _api(client, "post", rules, theirs, kind="tag", value="a=b", reason="r").status_code == 404
    )
    assert IgnoreRule.objects.count() == 1
