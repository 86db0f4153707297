"""The issues list's search, sort and bulk actions, and the issue page's tag distributions,
event navigation, events-over-time chart and stack frames, on events sent through ingest."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.errors import issue_detail
from bastion.errors.models import Event, Issue, IssueStatus, IssueTagValue
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.factories import make_member


def _exception(kind: str) -> dict[str, Any]:
    frames = [
        {"module": "django.core", "function": "handler", "lineno": 3, "in_app": False},
        {
            "module": "shop.views",
            "function": "checkout",
            "lineno": 42,
            "in_app": True,
            "pre_context": ["def checkout(cart):", "    total = cart.total()"],
            "context_line": "    raise Boom(total)",
            "post_context": ["", "def refund(): ..."],
        },
    ]
    return {"values": [{"type": kind, "value": "boom", "stacktrace": {"frames": frames}}]}


def _send(client: Client, setup: Setup, kind: str, region: str, **fields: Any) -> str:
    return send_event(client, setup, exception=_exception(kind), tags={"region": region}, **fields)


@pytest.fixture
def world(client: Client, setup: Setup) -> Setup:
    for region in ("eu", "eu", "eu", "us"):
        _send(client, setup, "PaymentError", region, environment="production", release="r2")
    _send(client, setup, "StockError", "ap", environment="staging", release="r1")
    return setup


def _issue(kind: str) -> Issue:
    return Issue.objects.get(title__startswith=kind)


def test_tag_values_are_counted_at_ingest_and_shown_with_their_share(
    client: Client, world: Setup
) -> None:
    payment = _issue("PaymentError")
    counts = dict(
        IssueTagValue.objects.filter(issue=payment, key="region").values_list("value", "count")
    )
    assert counts == {"eu": 3, "us": 1}
    region = next(d for d in issue_detail.tag_distributions(payment) if d.key == "region")
    assert [(s.value, s.count, s.percent) for s in region.top] == [("eu", 3, 75.0), ("us", 1, 25.0)]
    keys = [d.key for d in issue_detail.tag_distributions(payment)]
    assert keys[:3] == ["environment", "release", "level"]
    client.force_login(world.owner)
    page = client.get(f"/o/{world.org.slug}/errors/{world.project.slug}/issues/{payment.pk}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="tag-distribution"' in body and "75%" in body and "25%" in body


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "region:eu"}, ["PaymentError"]),
        ({"q": "region:ap"}, ["StockError"]),
        ({"q": "region:nowhere"}, []),
        ({"environment": "staging"}, ["StockError"]),
        ({"release": "r2"}, ["PaymentError"]),
        ({"q": "Stock"}, ["StockError"]),
        ({"q": "is:resolved"}, []),
        ({"sort": "events"}, ["PaymentError", "StockError"]),
        ({"last_seen_before": "2000-01-01"}, []),
        ({"first_seen_after": "2000-01-01", "sort": "events"}, ["PaymentError", "StockError"]),
    ],
)
def test_issue_search(
    client: Client, world: Setup, params: dict[str, str], expected: list[str]
) -> None:
    client.force_login(world.owner)
    response = client.get(f"/o/{world.org.slug}/errors/{world.project.slug}/", params)
    assert response.status_code == 200
    titles = [i.title.split(":")[0] for i in response.context["issues"]]
    assert titles == expected


def test_bulk_resolve_is_audited_and_needs_a_member(client: Client, world: Setup) -> None:
    ids = [str(i.pk) for i in Issue.objects.all()]
    url = f"/o/{world.org.slug}/errors/{world.project.slug}/issues/bulk/"
    viewer = make_member(world.org, Role.VIEWER)
    client.force_login(viewer)
    assert client.post(url, {"issue": ids, "status": "resolved"}).status_code == 403
    assert set(Issue.objects.values_list("status", flat=True)) == {IssueStatus.UNRESOLVED}
    client.force_login(world.owner)
    response = client.post(url, {"issue": ids, "status": "resolved", "back": "sort=events"})
    assert response.status_code == 302 and response["Location"].endswith("?sort=events")
    assert set(Issue.objects.values_list("status", flat=True)) == {IssueStatus.RESOLVED}
    assert AuditEvent.objects.filter(action="errors.issue.resolved").count() == 2
    other = make_setup()
    foreign = Issue.objects.create(
        project=other.project,
        grouping_version="grouping:v1",
        grouping_hash="x",
        title="theirs",
        first_seen=Issue.objects.first().first_seen,  # type: ignore[union-attr]
        last_seen=Issue.objects.first().last_seen,  # type: ignore[union-attr]
    )
    refused = client.post(url, {"issue": [ids[0], str(foreign.pk)], "status": "unresolved"})
    assert refused.status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == IssueStatus.UNRESOLVED
    assert Issue.objects.get(pk=ids[0]).status == IssueStatus.RESOLVED  # nothing changed


def test_issue_page_navigates_between_events(client: Client, world: Setup) -> None:
    payment = _issue("PaymentError")
    events = list(Event.objects.filter(issue=payment).order_by("received_at", "pk"))
    client.force_login(world.owner)
    base = f"/o/{world.org.slug}/errors/{world.project.slug}/issues/{payment.pk}/"
    latest = client.get(base)
    assert latest.context["event"] == events[-1]
    nav = latest.context["nav"]
    assert nav.newer is None and nav.latest is None
    assert nav.older == events[-2] and nav.first == events[0]
    second = client.get(base, {"event": events[1].event_id.hex})
    assert second.context["event"] == events[1]
    assert second.context["nav"].older == events[0] and second.context["nav"].newer == events[2]
    body = second.content.decode()
    assert 'data-testid="in-app-frame"' in body and 'data-testid="system-frame"' in body
    assert "src-current" in body and "raise Boom(total)" in body
    unknown = client.get(base, {"event": "not-an-id"})
    assert unknown.context["event"] == events[-1]


def test_chart_counts_every_recent_event(world: Setup) -> None:
    payment = _issue("PaymentError")
    chart = issue_detail.events_chart(payment)
    assert chart.unit == "hour" and sum(bar.count for bar in chart.bars) == 4
    assert chart.peak == 4 and max(bar.height for bar in chart.bars) > 0


def test_issue_page_reads_a_bounded_number_of_queries(client: Client, world: Setup) -> None:
    payment = _issue("PaymentError")
    client.force_login(world.owner)
    url = f"/o/{world.org.slug}/errors/{world.project.slug}/issues/{payment.pk}/"
    client.get(url)
    for region in ("eu", "us", "ap"):
        _send(client, world, "PaymentError", region, environment=f"env-{region}")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as again:
        assert client.get(url).status_code == 200
    assert len(again.captured_queries) == len(queries.captured_queries) <= 40
    assert Principal.of_user(world.owner) is not None
