"""The real sentry-sdk (Python) sending to a live server: what it sends is stored and grouped."""

from __future__ import annotations

from typing import Any

import pytest
import sentry_sdk

from bastion.errors.models import Attachment, Event, Issue
from tests.errors.conftest import Setup
from tests.errors.sdk_helpers import sentry_client

pytestmark = pytest.mark.slow


class PaymentError(Exception):
    pass


def _lookup(order: int) -> None:
    raise KeyError(f"order-{order}")


def _charge(order: int) -> None:
    try:
        _lookup(order)
    except KeyError as exc:
        raise PaymentError(f"could not charge order {order}") from exc


def _fail_at(where: int) -> None:
    if where == 1:
        raise PaymentError("first line")
    raise PaymentError("second line")


def _add_request(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    event["request"] = {
        "url": "http://shop.test/checkout",
        "method": "POST",
        "headers": {
            "Authorization": "Bearer abcdefgh12345678",
            "Cookie": "sid=s3cr3t",
            "X-Ok": "1",
        },
        "data": {"card": "4111 1111 1111 1111", "password": "hunter2", "qty": 2},
        "query_string": "token=abc123&page=2",
    }
    return event


def test_chained_exception_with_context_is_stored_grouped_and_scrubbed(
    live_server: Any, live_setup: Setup
) -> None:
    dsn = live_setup.dsn(live_server.url)
    with sentry_client(dsn, release="shop@1.4.2", environment="staging"):
        scope = sentry_sdk.get_isolation_scope()
        scope.add_event_processor(_add_request)
        sentry_sdk.set_tag("region", "eu-west")
        sentry_sdk.set_user({"id": "42", "email": "ada@example.test"})
        sentry_sdk.add_breadcrumb(category="cart", message="added item 7", level="info")
        scope.add_attachment(bytes=b"cart state: 3 items\n", filename="cart.txt")
        try:
            _charge(1234)
        except PaymentError:
            event_id = sentry_sdk.capture_exception()
    assert event_id is not None
    event = Event.objects.get(event_id=event_id)
    issue = event.issue
    assert issue.project_id == live_setup.project.pk
    assert issue.title == "PaymentError: could not charge order 1234"
    assert issue.culprit.endswith("in _charge")
    assert issue.releases == ["shop@1.4.2"] and issue.environments == ["staging"]
    assert issue.event_count == 1 and issue.users_affected == 1
    data = event.data
    assert [e["type"] for e in data["exception"]] == ["KeyError", "PaymentError"]
    assert data["tags"]["region"] == "eu-west"
    assert data["user"]["id"] == "42"
    assert any(b.get("message") == "added item 7" for b in data["breadcrumbs"])
    request = data["request"]
    assert request["headers"]["Authorization"] == "[Filtered]"
    assert request["headers"]["Cookie"] == "[Filtered]"
    assert request["headers"]["X-Ok"] == "1"
    assert request["data"]["password"] == "[Filtered]"
    assert request["data"]["card"] == "[Filtered]"
    assert request["data"]["qty"] == 2
    assert "abc123" not in request["query_string"]
    assert "hunter2" not in str(data) and "s3cr3t" not in str(data)
    attachment = Attachment.objects.get(event=event)
    assert attachment.filename == "cart.txt"
    with attachment.file.open("rb") as handle:
        assert handle.read() == b"cart state: 3 items\n"


def test_grouping_ignores_line_numbers_and_values_but_not_fingerprints(
    live_server: Any, live_setup: Setup
) -> None:
    dsn = live_setup.dsn(live_server.url)
    ids = []
    with sentry_client(dsn):
        for where in (1, 2):
            try:
                _fail_at(where)
            except PaymentError:
                ids.append(sentry_sdk.capture_exception())
        for tenant in ("a", "b"):
            with sentry_sdk.new_scope() as scope:
                scope.fingerprint = ["{{ default }}", f"tenant-{tenant}"]
                try:
                    _fail_at(1)
                except PaymentError:
                    ids.append(sentry_sdk.capture_exception())
        for user in (17, 18):
            ids.append(sentry_sdk.capture_message(f"user {user} logged in twice"))
    events = {e.event_id.hex: e for e in Event.objects.all()}
    assert set(events) == {i for i in ids if i}
    by_id = [events[i] for i in ids if i]
    assert by_id[0].issue_id == by_id[1].issue_id  # other line, other message: same issue
    assert by_id[2].issue_id != by_id[3].issue_id  # fingerprints split them
    assert by_id[2].issue_id != by_id[0].issue_id
    assert by_id[4].issue_id == by_id[5].issue_id  # normalized message
    assert Issue.objects.get(pk=by_id[4].issue_id).title == "user 18 logged in twice"  # latest
    assert Issue.objects.get(pk=by_id[0].issue_id).event_count == 2
    assert {i.grouping_version for i in Issue.objects.all()} == {"grouping:v1"}
