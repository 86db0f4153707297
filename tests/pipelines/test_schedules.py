"""Scheduled builds: created, edited and deleted as named actions and over the API (audited,
validated, scoped), shown on the pipeline page, and fired by the scheduler's tick — once, however
many runs a downtime swallowed — as builds whose source is the schedule."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from bastion.core.models import AuditEvent, Role, Schedule
from bastion.core.scheduler import tick
from bastion.pipelines import scheduling, services
from bastion.pipelines.environment import condition_context
from bastion.pipelines.models import Build, PipelineSchedule
from bastion.pipelines.scheduling import BuildScheduleSpec
from tests.api.conftest import ApiClient
from tests.factories import make_member
from tests.jobs.helpers import World
from tests.pipelines.helpers import make_pipeline
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db
YAML = "steps:\n  - command: echo nightly $$NIGHTLY\n    key: nightly\n"


def _base(world: World) -> str:
    return f"/organizations/{world.org.slug}/pipelines/app/schedules"


def test_a_missed_schedule_fires_one_build_recording_the_schedule_as_its_source() -> None:
    world = World(cluster_name="default")
    pipeline = make_pipeline(world, YAML, default_branch="main")
    row = scheduling.create_build_schedule(
        world.principal,
        pipeline,
        BuildScheduleSpec(
            cron="0 * * * *", branch="release", message="nightly", env={"NIGHTLY": "1"}
        ),
    )
    assert (row.schedule.kind, row.schedule.object_id) == ("pipelines.build", str(row.pk))
    now = timezone.now()
    # The scheduler was down for five hours: five hourly runs fell in the gap; one build runs.
    Schedule.objects.filter(pk=row.schedule_id).update(next_run_at=now - timedelta(hours=5))
    assert tick(now).schedules_fired == 1
    assert tick(now + timedelta(seconds=1)).schedules_fired == 0
    build = Build.objects.get()
    assert (build.source, build.schedule_id, build.branch, build.commit) == (
        "schedule",
        row.pk,
        "release",
        "HEAD",
    )
    assert build.message == "nightly" and build.env == {"NIGHTLY": "1"}
    assert f"schedule:{row.schedule_id}" in build.created_by
    context = condition_context(build)  # what `if` conditions see: no person started it
    assert context["build.source"] == "schedule" and context["build.creator.id"] is None
    event = AuditEvent.objects.get(action="build.create")
    assert event.changes["source"] == "schedule" and event.changes["schedule"] == row.pk
    row.schedule.refresh_from_db()
    assert row.schedule.last_run_at == now and row.schedule.next_run_at > now
    page = login_client(world.owner).get(f"/o/{world.org.slug}/pipelines/app/builds/1/")
    assert "Scheduled build: 0 * * * *" in page.content.decode()


def test_a_paused_schedule_does_not_fire_and_deleting_the_pipeline_drops_its_schedules() -> None:
    world = World(cluster_name="default")
    pipeline = make_pipeline(world, YAML)
    row = scheduling.create_build_schedule(
        world.principal, pipeline, BuildScheduleSpec(cron="*/5 * * * *", enabled=False)
    )
    assert row.branch == "main" and scheduling.next_runs(row) == []
    assert tick(timezone.now() + timedelta(days=1)).schedules_fired == 0
    assert not Build.objects.exists()
    services.delete_pipeline(world.principal, pipeline)
    assert not Schedule.objects.exists() and not PipelineSchedule.objects.exists()


def test_bad_specs_are_refused_before_anything_is_written() -> None:
    world = World(cluster_name="default")
    pipeline = make_pipeline(world, YAML)
    before = AuditEvent.objects.count()
    for spec, field in (
        (BuildScheduleSpec(cron="every night"), "cron"),
        (BuildScheduleSpec(cron="0 6 * *"), "cron"),
        (BuildScheduleSpec(cron="0 6 * * *", timezone="Mars/Olympus"), "timezone"),
        (BuildScheduleSpec(cron="0 6 * * *", env={"1BAD": "x"}), "env"),
        (BuildScheduleSpec(cron="0 6 * * *", branch="b" * 201), "branch"),
    ):
        with pytest.raises(ValidationError) as caught:
            scheduling.create_build_schedule(world.principal, pipeline, spec)
        assert field in caught.value.message_dict, (spec, caught.value.message_dict)
    assert not Schedule.objects.exists() and AuditEvent.objects.count() == before


def test_schedules_over_the_api_scoped_and_audited() -> None:
    world, other = World(cluster_name="default"), World(cluster_name="default")
    make_pipeline(world, YAML)
    make_pipeline(other, YAML)
    client = ApiClient(user=world.owner)
    base = _base(world)
    body = {"cron": "0 2 * * *", "timezone": "Europe/Lisbon", "env": {"A": "1"}, "label": "Nightly"}
    created = client.post(base, body)
    assert created.status == 201, created.body
    assert created.body["branch"] == "main" and created.body["env"] == ["A"]
    lisbon = ZoneInfo("Europe/Lisbon")
    upcoming = [
        timezone.datetime.fromisoformat(m).astimezone(lisbon) for m in created.body["next_runs"]
    ]
    assert len(upcoming) == 3 and all((m.hour, m.minute) == (2, 0) for m in upcoming)
    schedule_id = created.body["id"]
    assert [s["id"] for s in client.get(base).body] == [schedule_id]

    replaced = client.call(
        "PUT", f"{base}/{schedule_id}", {"cron": "30 1 * * 1", "branch": "dev", "enabled": False}
    )
    assert replaced.status == 200, replaced.body
    assert replaced.body["next_runs"] == [] and replaced.body["branch"] == "dev"
    update = AuditEvent.objects.get(action="pipeline.schedule.update")
    assert update.changes["enabled"] == {"before": True, "after": False}
    assert "1" not in str(update.changes["env"])  # variable names only, never values

    assert client.post(base, {"cron": "61 * * * *"}).status == 400
    viewer = ApiClient(user=make_member(world.org, Role.VIEWER))
    assert viewer.get(base).status == 200
    assert viewer.post(base, {"cron": "0 6 * * *"}).status == 403
    assert viewer.delete(f"{base}/{schedule_id}").status == 403
    outsider = ApiClient(user=other.owner)
    assert outsider.get(base).status == 404
    assert outsider.delete(f"{base}/{schedule_id}").status == 404
    # Another organization's schedule id under our pipeline is not found either.
    theirs = ApiClient(user=other.owner).post(_base(other), {"cron": "0 6 * * *"})
    assert client.delete(f"{base}/{theirs.body['id']}").status == 404

    assert client.delete(f"{base}/{schedule_id}").status == 204
    assert PipelineSchedule.objects.filter(pipeline__organization=world.org).count() == 0
    assert AuditEvent.objects.filter(action="pipeline.schedule.delete").count() == 1


def test_the_pipeline_page_lists_schedules_and_its_forms_create_edit_and_delete() -> None:
    world = World(cluster_name="default")
    make_pipeline(world, YAML)
    client = login_client(world.owner)
    page = f"/o/{world.org.slug}/pipelines/app/"
    assert "Not scheduled" in client.get(page).content.decode()
    reply = client.post(
        page + "schedules/new/",
        {"cron": "0 3 * * *", "timezone": "UTC", "branch": "", "env": "A=1\n# c\nB = two\n",
         "label": "Nightly", "enabled": "1"},
    )  # fmt: skip
    assert reply.status_code == 302
    row = PipelineSchedule.objects.get()
    assert row.env == {"A": "1", "B": "two"} and row.label == "Nightly"
    html = client.get(page).content.decode()
    assert "Nightly" in html and "0 3 * * *" in html and "03:00" in html
    refused = client.post(page + "schedules/new/", {"cron": "nope"}, follow=True)
    assert "Schedule not saved" in refused.content.decode()
    assert PipelineSchedule.objects.count() == 1
    client.post(page + f"schedules/{row.pk}/", {"cron": "0 4 * * *", "timezone": "UTC"})
    row.schedule.refresh_from_db()
    assert (row.schedule.cron, row.schedule.enabled) == ("0 4 * * *", False)
    assert "paused" in client.get(page).content.decode()
    client.post(page + f"schedules/{row.pk}/delete/")
    assert not PipelineSchedule.objects.exists()
