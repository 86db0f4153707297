"""Alert settings and the digest schedule: API and pages, audited, scoped to the caller's
organization, validated (bad input: 4xx and nothing changed); and the hot path's cost."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bastion.core.models import AuditEvent, Role, Schedule
from bastion.errors.alert_models import AlertSettings, DigestSettings
from bastion.errors.models import Issue
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.errors.test_api_cli import _token
from tests.factories import make_member


def _call(client: Client, method: str, path: str, token: str, data: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/organizations/{path}"
    if method == "get":
        return client.get(url, headers=headers)
    return client.put(url, json.dumps(data), content_type="application/json", headers=headers)


def test_alert_settings_api_defaults_update_audit_and_refusals(
    client: Client, setup: Setup
) -> None:
    path = f"{setup.org.slug}/projects/{setup.project.slug}/alert-settings"
    owner = _token(setup)
    got = _call(client, "get", path, owner).json()
    assert got["on_new"] and got["spike_events"] == 100 and got["updated_at"] is None
    wanted = {**got, "spike_events": 20, "spike_minutes": 2, "production_environment": "prod"}
    wanted.pop("project"), wanted.pop("updated_at")
    changed = _call(client, "put", path, owner, wanted)
    assert changed.status_code == 200, changed.content
    assert changed.json()["spike_events"] == 20 and changed.json()["updated_at"]
    audit = AuditEvent.objects.get(action="errors.alert_settings.update")
    assert audit.changes["spike_events"] == {"before": 100, "after": 20}

    for bad in ({"spike_events": 0}, {"production_environment": " "}, {"cooldown_minutes": -1}):
        refused = _call(client, "put", path, owner, {**wanted, **bad})
        assert refused.status_code in (400, 422), bad
    viewer = _token(setup, Role.VIEWER)
    assert _call(client, "put", path, viewer, {**wanted, "spike_events": 7}).status_code == 403
    other = make_setup()
    theirs = f"{other.org.slug}/projects/{other.project.slug}/alert-settings"
    assert _call(client, "get", theirs, owner).status_code == 404
    assert _call(client, "put", theirs, owner, wanted).status_code == 404
    assert AlertSettings.objects.get().spike_events == 20
    assert AuditEvent.objects.filter(action="errors.alert_settings.update").count() == 1


def test_digest_api_schedules_validates_and_is_scoped(client: Client, setup: Setup) -> None:
    path = f"{setup.org.slug}/errors-digest"
    owner = _token(setup)
    assert _call(client, "get", path, owner).json()["enabled"] is False
    body = {"enabled": True, "cron": "0 9 * * 1", "timezone": "Europe/Lisbon", "recipients": []}
    saved = _call(client, "put", path, owner, {**body, "recipients": ["Audit@Example.test"]})
    assert saved.status_code == 200, saved.content
    assert saved.json()["next_run_at"] and saved.json()["recipients"] == ["audit@example.test"]
    schedule = Schedule.objects.get(kind="errors.digest")
    assert (schedule.cron, schedule.timezone, schedule.organization_id) == (
        "0 9 * * 1",
        "Europe/Lisbon",
        setup.org.pk,
    )
    for bad in ({"cron": "every monday"}, {"timezone": "Mars/Olympus"}, {"recipients": ["x"]}):
        assert _call(client, "put", path, owner, {**body, **bad}).status_code == 400, bad
    assert _call(client, "put", path, _token(setup, Role.VIEWER), body).status_code == 403
    other = make_setup()
    assert _call(client, "put", f"{other.org.slug}/errors-digest", owner, body).status_code == 404
    assert Schedule.objects.count() == 1
    assert DigestSettings.objects.get().recipients == ["audit@example.test"]
    assert AuditEvent.objects.filter(action="errors.digest.update").count() == 1


def test_alert_settings_page_saves_and_refuses(client: Client, setup: Setup) -> None:
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/alerts/"
    client.force_login(setup.owner)
    page = client.get(base)
    assert page.status_code == 200
    assert b"No channel receives error alerts yet" in page.content
    form = {
        "on_new": "on",
        "on_unexpected": "on",
        "production_environment": "live",
        "spike_events": "50",
        "spike_minutes": "3",
        "cooldown_minutes": "15",
    }
    assert client.post(base + "save/", form).status_code == 302
    row = AlertSettings.objects.get()
    assert (row.on_regression, row.on_spike, row.production_environment) == (False, False, "live")
    bad = client.post(base + "save/", {**form, "spike_events": "0"})
    assert bad.status_code == 400 and AlertSettings.objects.get().spike_events == 50
    viewer = make_member(setup.org, Role.VIEWER)
    client.force_login(viewer)
    assert client.get(base).status_code == 200
    assert client.post(base + "save/", {**form, "spike_events": "9"}).status_code == 403
    other = make_setup()
    client.force_login(other.owner)
    assert client.get(base).status_code == 404
    assert client.post(base + "save/", form).status_code == 404
    assert AlertSettings.objects.get().spike_events == 50


def test_digest_form_on_the_coverage_page(client: Client, setup: Setup) -> None:
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/review-coverage/"
    client.force_login(setup.owner)
    assert b"Weekly review digest" in client.get(base).content
    form = {"enabled": "on", "cron": "30 7 * * 1", "timezone": "UTC", "recipients": "a@x.test"}
    assert client.post(base + "digest/", form).status_code == 302
    assert Schedule.objects.get(kind="errors.digest").cron == "30 7 * * 1"
    assert b"next 20" in client.get(base).content  # the next run is shown
    client.post(base + "digest/", {**form, "cron": "nope"})
    assert Schedule.objects.get(kind="errors.digest").cron == "30 7 * * 1"
    client.force_login(make_member(setup.org, Role.MEMBER))
    assert client.post(base + "digest/", form).status_code == 403


def test_alert_evaluation_adds_no_query_to_the_usual_ingest(client: Client, setup: Setup) -> None:
    """Events of a known issue outside production, below the spike threshold: the settings are
    cached, nothing is a candidate, so alerting costs no query."""
    send_event(client, setup, environment="staging")
    send_event(client, setup, environment="staging")
    with CaptureQueriesContext(connection) as queries:
        send_event(client, setup, environment="staging")
    statements = [q["sql"].lower() for q in queries.captured_queries]
    assert not [s for s in statements if "alert" in s or "notification" in s], statements
    assert Issue.objects.get().event_count == 3
