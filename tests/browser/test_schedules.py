"""Scheduled suite runs: created, edited and deleted over the API (audited, validated, scoped),
next runs in the schedule's time zone, and a due schedule fires one run — with the suite's
environment and concurrency — however many runs a downtime swallowed."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from bastion.browser import runs, services
from bastion.browser.models import BrowserRun, SuiteSchedule
from bastion.core.models import AuditEvent, Role, Schedule
from bastion.core.scheduler import fire_due_schedules
from tests.api.conftest import ApiClient
from tests.factories import make_member, make_project
from tests.jobs.helpers import World

pytestmark = pytest.mark.django_db


def _suite(world: World, concurrency: int = 2) -> tuple[str, services.Suite]:
    project = make_project(world.org, slug="shop")
    for name in ("home", "cart", "pay"):
        services.save_test(
            world.principal, project, {"name": name, "start_url": "/", "steps": [{"log": name}]}
        )
    services.create_environment(
        world.principal, project, slug="staging", name="Staging", base_url="http://127.0.0.1:9"
    )
    suite = services.create_suite(
        world.principal,
        project,
        slug="nightly",
        tests=["home", "cart", "pay"],
        concurrency=concurrency,
    )
    return f"/organizations/{world.org.slug}/projects/shop/browser/suites/nightly/schedules", suite


def test_schedules_over_the_api_with_next_runs_in_their_time_zone() -> None:
    world = World(cluster_name="default")
    base, _ = _suite(world)
    client = ApiClient(user=world.owner)
    body = {"cron": "0 6 * * 1-5", "timezone": "Europe/Lisbon", "environment": "staging"}
    created = client.post(base, body)
    assert created.status == 201, created.body
    assert created.body["environment"] == "staging" and created.body["cron"] == "0 6 * * 1-5"
    lisbon = ZoneInfo("Europe/Lisbon")
    upcoming = [
        timezone.datetime.fromisoformat(moment).astimezone(lisbon)
        for moment in created.body["next_runs"]
    ]
    assert len(upcoming) == 3 and upcoming == sorted(upcoming)
    assert all((m.hour, m.minute) == (6, 0) and m.weekday() < 5 for m in upcoming)
    assert upcoming[0] > timezone.now()
    row = SuiteSchedule.objects.get(pk=created.body["id"])
    assert (row.schedule.kind, row.schedule.object_id) == ("browser.suite", str(row.pk))
    assert AuditEvent.objects.filter(action="browser.schedule.create").count() == 1

    listed = client.get(base)
    assert [s["id"] for s in listed.body] == [row.pk]
    replaced = client.call("PUT", f"{base}/{row.pk}", {"cron": "30 */2 * * *", "enabled": False})
    assert replaced.status == 200
    assert replaced.body["environment"] == "" and replaced.body["next_runs"] == []
    row.schedule.refresh_from_db()
    assert (row.schedule.cron, row.schedule.enabled, row.schedule.next_run_at) == (
        "30 */2 * * *",
        False,
        None,
    )
    assert client.delete(f"{base}/{row.pk}").status == 204
    assert not SuiteSchedule.objects.exists() and not Schedule.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"browser.schedule.update", "browser.schedule.delete"} <= actions


def test_bad_schedules_are_refused_and_change_nothing() -> None:
    world, other = World(cluster_name="default"), World(cluster_name="default")
    base, _ = _suite(world)
    make_project(other.org, slug="theirs")
    client = ApiClient(user=world.owner)
    viewer = ApiClient(user=make_member(world.org, Role.VIEWER))
    before = AuditEvent.objects.count()
    for body, field in (
        ({"cron": "every day"}, "cron"),
        ({"cron": "0 6 * *"}, "cron"),
        ({"cron": "61 6 * * *"}, "cron"),
        ({"cron": "0 6 * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ):
        refused = client.post(base, body)
        assert refused.status == 400, body
        assert field in refused.body["errors"], refused.body
    assert client.post(base, {"cron": "0 6 * * *", "environment": "nope"}).status == 404
    assert viewer.post(base, {"cron": "0 6 * * *"}).status == 403
    outsider = ApiClient(user=other.owner)
    assert outsider.get(base).status == 404
    assert not Schedule.objects.exists() and AuditEvent.objects.count() == before


def test_a_missed_schedule_fires_one_run_with_the_suites_environment_and_concurrency() -> None:
    world = World(cluster_name="default")
    base, suite = _suite(world, concurrency=2)
    created = ApiClient(user=world.owner).post(
        base, {"cron": "0 * * * *", "timezone": "UTC", "environment": "staging"}
    )
    row = SuiteSchedule.objects.get(pk=created.body["id"])
    now = timezone.now()
    # The scheduler was down for five hours: five hourly runs fell in the gap.
    Schedule.objects.filter(pk=row.schedule_id).update(next_run_at=now - timedelta(hours=5))
    assert fire_due_schedules(now) == 1
    assert fire_due_schedules(now + timedelta(seconds=1)) == 0
    run = BrowserRun.objects.get()
    assert (run.suite_id, run.environment_id) == (suite.pk, row.environment_id)
    assert run.triggered_by is None
    jobs = runs.run_jobs(run)
    assert len(jobs) == 2  # three tests over two jobs: the agents share the suite
    assert sorted(len(job.payload["tests"]) for job in jobs) == [1, 2]
    assert {job.payload["base_url"] for job in jobs} == {"http://127.0.0.1:9"}
    row.schedule.refresh_from_db()
    assert row.schedule.last_run_at == now and row.schedule.next_run_at > now
