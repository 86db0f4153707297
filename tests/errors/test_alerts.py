"""Alerts end to end: the real sentry-sdk sends to a live server, ingest groups the events and
decides the alert, core notifications deliver it to a real loopback webhook (HMAC checked), a
Slack-compatible hook and Bastion's real SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sentry_sdk

from bastion.browser.models import MailMessage
from bastion.core.access import Principal
from bastion.core.models import NotificationChannel, NotificationDelivery
from bastion.core.notifications import create_channel
from bastion.errors import actions, services
from bastion.errors.alert_models import AlertState
from bastion.errors.models import IgnoreRule, Issue, RuleKind
from tests.errors.conftest import Setup
from tests.errors.receivers import (
    WebhookReceiver,
    hook_url,
    received_at,
    smtp_to_sink,
    webhook_receiver,
)
from tests.errors.sdk_helpers import sentry_client

pytestmark = pytest.mark.slow
SECRET = "whsec-test-0123456789"


class CheckoutError(Exception):
    pass


class PaymentTimeout(Exception):
    pass


class ExpectedNoise(Exception):
    pass


def _raise(kind: type[Exception], text: str) -> None:
    raise kind(text)


def _capture(kind: type[Exception], text: str = "boom") -> None:
    try:
        _raise(kind, text)
    except kind:
        sentry_sdk.capture_exception()


@contextmanager
def sdk(dsn: str, **options: Any) -> Iterator[None]:
    """The real sentry-sdk for the block; waits (bounded) until every event was answered, so
    the server is idle when the test reads the database."""
    with sentry_client(dsn, **options):
        yield
        sentry_sdk.flush(timeout=120)


@pytest.fixture
def sink(live_setup: Setup) -> Iterator[int]:
    with smtp_to_sink() as port:
        yield port


def _hook_and_mail(setup: Setup, hooks: WebhookReceiver, topics: list[str]) -> None:
    _channel(setup, "hook", "webhook", hook_url(hooks, "/hook"), topics)
    _channel(setup, "mail", "email", "alerts@inbox.bastion.test", topics)


def _mailed() -> list[str]:
    rows = MailMessage.objects.filter(inbox="alerts@inbox.bastion.test").order_by("pk")
    return [m.subject for m in rows]


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


def _channel(setup: Setup, name: str, kind: str, target: str, topics: list[str]) -> None:
    create_channel(
        Principal.of_user(setup.owner),
        setup.org,
        name=name,
        kind=kind,
        target=target,
        topics=topics,
        secret=SECRET if kind == NotificationChannel.Kind.WEBHOOK else "",
    )


def _settings(setup: Setup, **changes: Any) -> None:
    spec = actions.AlertSpec(**{**actions.AlertSpec().__dict__, **changes})
    actions.update_alert_settings(Principal.of_user(setup.owner), setup.project, spec)


def test_new_issue_alert_reaches_signed_webhook_slack_and_email(
    live_server: Any, live_setup: Setup, hooks: WebhookReceiver
) -> None:
    _channel(live_setup, "hook", "webhook", hook_url(hooks, "/hook"), ["errors.*"])
    _channel(live_setup, "chat", "slack", hook_url(hooks, "/slack"), ["errors.issue.new"])
    _channel(live_setup, "mail", "email", "oncall@inbox.bastion.test", ["errors.issue.*"])
    with smtp_to_sink(), sentry_client(live_setup.dsn(live_server.url), environment="staging"):
        _capture(CheckoutError, "cart 7 is empty")
    issue = Issue.objects.get()
    [hook] = received_at(hooks, "/hook")
    assert hook.signed_with(SECRET)
    assert not hook.signed_with("another secret")
    body = hook.json
    assert body["topic"] == "errors.issue.new"
    assert body["data"]["issue_id"] == issue.pk and body["data"]["kinds"] == ["new"]
    assert body["data"]["environment"] == "staging"
    assert body["url"].endswith(f"/errors/{live_setup.project.slug}/issues/{issue.pk}/")
    assert "CheckoutError: cart 7 is empty" in body["subject"]
    [slack] = received_at(hooks, "/slack")
    assert "New issue" in slack.json["text"] and f"issues/{issue.pk}/" in slack.json["text"]
    mail = MailMessage.objects.get(inbox="oncall@inbox.bastion.test")
    assert mail.subject.startswith("[Bastion] New issue in")
    assert b"CheckoutError: cart 7 is empty" in bytes(mail.raw)
    statuses = set(NotificationDelivery.objects.values_list("status", flat=True))
    assert statuses == {"sent"}


def test_regression_alert(
    live_server: Any, live_setup: Setup, hooks: WebhookReceiver, sink: int
) -> None:
    _hook_and_mail(live_setup, hooks, ["errors.issue.regressed"])
    dsn = live_setup.dsn(live_server.url)
    with sdk(dsn, release="shop@1.0", environment="staging"):
        _capture(CheckoutError)
    issue = Issue.objects.get()
    services.resolve_issue(Principal.of_user(live_setup.owner), issue)
    assert hooks.requests == []  # the new-issue alert had no subscriber
    with sdk(dsn, release="shop@1.1", environment="staging"):
        _capture(CheckoutError)
    [alert] = received_at(hooks, "/hook")
    assert alert.json["topic"] == "errors.issue.regressed"
    assert alert.json["data"]["issue_id"] == issue.pk
    assert alert.json["data"]["release"] == "shop@1.1"
    assert alert.json["subject"].startswith("Regression in") and alert.signed_with(SECRET)
    assert [m[:24] for m in _mailed()] == ["[Bastion] Regression in "]


def test_spike_alert_after_n_events_in_m_minutes(
    live_server: Any, live_setup: Setup, hooks: WebhookReceiver, sink: int
) -> None:
    _settings(live_setup, on_new=False, spike_events=5, spike_minutes=10)
    _hook_and_mail(live_setup, hooks, ["errors.*"])
    dsn = live_setup.dsn(live_server.url)
    with sdk(dsn, environment="staging"):
        for _ in range(4):
            _capture(CheckoutError)
    assert hooks.requests == []  # 4 events: under the threshold, and new issues are off
    with sdk(dsn, environment="staging"):
        for _ in range(3):
            _capture(CheckoutError)
    [alert] = received_at(hooks, "/hook")
    assert alert.json["topic"] == "errors.issue.spike"
    assert alert.json["data"]["spike"] == {"events": 5, "minutes": 10}
    assert "5 events in 10 min" in alert.json["subject"] and alert.signed_with(SECRET)
    assert [m[:19] for m in _mailed()] == ["[Bastion] Spike in "]


def test_unexpected_alert_spares_ignore_rules_and_other_environments(
    live_server: Any, live_setup: Setup, hooks: WebhookReceiver, sink: int
) -> None:
    _settings(live_setup, production_environment="prod")
    _hook_and_mail(live_setup, hooks, ["errors.issue.unexpected"])
    services.create_ignore_rule(
        Principal.of_user(live_setup.owner),
        live_setup.project,
        kind=RuleKind.EXCEPTION_TYPE,
        value="ExpectedNoise",
        reason="a known flaky dependency",
    )
    dsn = live_setup.dsn(live_server.url)
    with sdk(dsn, environment="prod"):
        _capture(ExpectedNoise)  # matched by the rule: counted, no alert
    with sdk(dsn, environment="staging"):
        _capture(CheckoutError)  # not production
    assert hooks.requests == []
    assert IgnoreRule.objects.get().match_count == 1
    with sdk(dsn, environment="prod"):
        _capture(CheckoutError)
        _capture(CheckoutError)  # once per issue
    [alert] = received_at(hooks, "/hook")
    assert alert.json["topic"] == "errors.issue.unexpected"
    assert alert.json["data"]["environment"] == "prod"
    assert alert.json["subject"].startswith("Unexpected error in prod")
    assert alert.signed_with(SECRET)
    assert [m[:34] for m in _mailed()] == ["[Bastion] Unexpected error in prod"]
    noise = Issue.objects.get(title__startswith="ExpectedNoise")
    assert noise.event_count == 1 and not AlertState.objects.filter(issue=noise).exists()
