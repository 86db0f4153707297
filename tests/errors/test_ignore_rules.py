"""Ignore rules: each kind matched on real ingest; matching events are stored and counted but
marked suppressed (and reopen nothing); rules are audited, validated, scoped, and their page
shows what each suppressed and when it last matched."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.errors import services
from bastion.errors.models import Event, IgnoreRule, Issue, IssueStatus, RuleKind
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.factories import make_member


def _rule(setup: Setup, kind: str, value: str) -> IgnoreRule:
    return services.create_ignore_rule(
        Principal.of_user(setup.owner), setup.project, kind=kind, value=value, reason="noise"
    )


MATCHING: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        RuleKind.EXCEPTION_TYPE,
        "BrokenPipeError",
        {"exception": {"values": [{"type": "BrokenPipeError", "value": "x"}]}},
        {"exception": {"values": [{"type": "BrokenPipe", "value": "x"}]}},
    ),
    (
        RuleKind.MESSAGE_REGEX,
        r"^upstream timed out after \d+s",
        {"exception": {"values": [{"type": "E", "value": "upstream timed out after 30s"}]}},
        {"exception": {"values": [{"type": "E", "value": "the upstream timed out after 30s"}]}},
    ),
    (
        RuleKind.MESSAGE_REGEX,
        "disk (full|quota)",
        {"exception": None, "message": "disk quota exceeded"},
        {"exception": None, "message": "disk ok"},
    ),
    (
        RuleKind.TAG,
        "env = staging",
        {"tags": {"env": "staging"}},
        {"tags": {"env": "production"}},
    ),
    (
        RuleKind.TRANSACTION,
        "/health*",
        {"transaction": "/healthz"},
        {"transaction": "/api/health"},
    ),
    (
        RuleKind.URL,
        "https://shop.example/admin/*",
        {"request": {"url": "https://shop.example/admin/login", "method": "GET"}},
        {"request": {"url": "https://shop.example/cart", "method": "GET"}},
    ),
]


@pytest.mark.parametrize(("kind", "value", "hit", "miss"), MATCHING)
def test_each_kind_suppresses_what_it_matches(
    client: Client, setup: Setup, kind: str, value: str, hit: dict[str, Any], miss: dict[str, Any]
) -> None:
    rule = _rule(setup, kind, value)
    hit_id = send_event(client, setup, **hit)
    miss_id = send_event(client, setup, **miss)
    hit_event = Event.objects.get(event_id=hit_id)
    assert hit_event.suppressed_by_id == rule.pk
    assert Event.objects.get(event_id=miss_id).suppressed_by_id is None
    assert hit_event.issue.event_count >= 1  # still counted
    rule.refresh_from_db()
    assert rule.match_count == 1 and rule.last_matched_at == hit_event.received_at


def test_suppressed_events_reopen_nothing(client: Client, setup: Setup) -> None:
    send_event(client, setup, tags={"env": "staging"})
    issue = Issue.objects.get(project=setup.project)
    services.resolve_issue(Principal.of_user(setup.owner), issue)
    _rule(setup, RuleKind.TAG, "env=staging")
    send_event(client, setup, tags={"env": "staging"})
    issue.refresh_from_db()
    assert issue.status == IssueStatus.RESOLVED and issue.event_count == 2
    send_event(client, setup, tags={"env": "production"})
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED and issue.regressed


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        (RuleKind.MESSAGE_REGEX, "(unclosed", "r"),
        (RuleKind.TAG, "no-equals-sign", "r"),
        ("no_such_kind", "x", "r"),
        (RuleKind.EXCEPTION_TYPE, "   ", "r"),
        (RuleKind.EXCEPTION_TYPE, "x" * 501, "r"),
        (RuleKind.EXCEPTION_TYPE, "KeyError", "  "),
    ],
)
def test_bad_rules_are_refused(setup: Setup, kind: str, value: str, reason: str) -> None:
    audited = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        services.create_ignore_rule(
            Principal.of_user(setup.owner), setup.project, kind=kind, value=value, reason=reason
        )
    assert not IgnoreRule.objects.exists() and AuditEvent.objects.count() == audited


def test_rules_pages_create_disable_audit_and_scope(client: Client, setup: Setup) -> None:
    member = make_member(setup.org, Role.MEMBER)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/ignore-rules/"
    form = {"kind": "exception_type", "value": "KeyError", "reason": "bots probing"}
    client.force_login(member)
    assert client.post(base + "new/", form).status_code == 403
    with pytest.raises(PermissionDenied):
        _rule(Setup(member, setup.org, setup.project, setup.key), RuleKind.TAG, "a=b")
    client.force_login(setup.owner)
    assert client.post(base + "new/", form).status_code == 302
    assert (
        client.post(base + "new/", {**form, "kind": "message_regex", "value": "("}).status_code
        == 302
    )
    rule = IgnoreRule.objects.get()
    assert (rule.created_by, rule.reason) == (setup.owner, "bots probing")
    created = AuditEvent.objects.get(action="errors.ignore_rule.create")
    assert created.changes["value"] == "KeyError" and created.changes["reason"] == "bots probing"

    suppressed = send_event(client, setup, exception={"values": [{"type": "KeyError"}]})
    listing = client.get(base).content.decode()
    assert "bots probing" in listing and setup.owner.username in listing and "never" not in listing
    detail = client.get(f"{base}{rule.pk}/").content.decode()
    assert suppressed in detail and "1 event suppressed" in detail

    assert client.post(f"{base}{rule.pk}/enabled/", {"enabled": "0"}).status_code == 302
    assert AuditEvent.objects.filter(action="errors.ignore_rule.disable").exists()
    after = send_event(client, setup, exception={"values": [{"type": "KeyError"}]})
    assert Event.objects.get(event_id=after).suppressed_by_id is None  # the cache was cleared
    assert "disabled" in client.get(base).content.decode()

    other = make_setup()
    client.force_login(other.owner)
    assert client.get(base).status_code == 404
    assert client.get(f"{base}{rule.pk}/").status_code == 404
    assert client.post(f"{base}{rule.pk}/enabled/", {"enabled": "1"}).status_code == 404
    theirs = f"/o/{other.org.slug}/errors/{other.project.slug}/ignore-rules/{rule.pk}/"
    assert client.get(theirs).status_code == 404
    assert client.post(theirs + "enabled/", {"enabled": "1"}).status_code == 404
    rule.refresh_from_db()
    assert not rule.enabled
