"""Scheduled scans: cron + time zone per target and profile, through the API and the scheduler's
real ``tick(now)``; a downtime that swallowed many runs starts one scan, not N."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from bastion.core import scheduler
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Schedule
from bastion.jobs import services as job_services
from bastion.scanning.models import Scan, ScanSchedule, Target
from tests.api.conftest import ApiClient, Team, make_team
from tests.factories import make_project

pytestmark = pytest.mark.django_db
LISBON = ZoneInfo("Europe/Lisbon")


@pytest.fixture
def team(db: None, settings: Any) -> Team:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_team("acme")


@pytest.fixture
def target(team: Team) -> Target:
    project = make_project(team.org, slug="web")
    job_services.create_cluster(Principal.of_user(team.owner), team.org, name="scanners")
    return Target.objects.create(
        project=project, name="shop", base_url="http://127.0.0.1:9/", verified_at=timezone.now()
    )


def _url(target: Target) -> str:
    return f"/api/v1/organizations/acme/scan-targets/{target.pk}/schedules"


def _create(owner: ApiClient, target: Target, **body: Any) -> Any:
    payload = {"cron": "0 8 * * 1-5", "timezone": "Europe/Lisbon", "cluster": "scanners", **body}
    return owner.post(_url(target), payload)


def test_weekday_mornings_and_evenings_with_next_runs_in_the_time_zone(
    team: Team, target: Target
) -> None:
    owner = team.as_owner()
    morning = _create(owner, target)
    evening = _create(owner, target, cron="30 17 * * 1-5", name="evening")
    assert morning.status == 201 and evening.status == 201

    listed = team.as_viewer().get(_url(target))
    assert listed.status == 200 and len(listed.body) == 2
    for row, (hour, minute) in zip(listed.body, [(8, 0), (17, 30)], strict=True):
        runs = [datetime.fromisoformat(r).astimezone(LISBON) for r in row["next_runs"]]
        assert len(runs) == 3 and runs == sorted(runs)
        assert all((r.hour, r.minute) == (hour, minute) for r in runs)
        assert all(r.isoweekday() <= 5 for r in runs)
    assert listed.body[1]["name"] == "evening" and listed.body[0]["profile"] == "lightning"
    core = Schedule.objects.get(pk=ScanSchedule.objects.get(pk=morning.body["id"]).schedule_id)
    assert core.kind == "scan" and core.next_run_at is not None
    assert core.next_run_at.astimezone(LISBON).hour == 8
    assert AuditEvent.objects.filter(action="scan_schedule.create").count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "61 8 * * *"}, "cron"),
        ({"cron": "0 8 * *"}, "cron"),
        ({"cron": "@reboot"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"profile": "nope"}, "profile"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(
    team: Team, target: Target, body: dict[str, str], field: str
) -> None:
    before = AuditEvent.objects.count()
    reply = _create(team.as_owner(), target, **body)
    assert reply.status == 400, reply.body
    assert field in reply.raw.decode()
    assert not Schedule.objects.exists() and not ScanSchedule.objects.exists()
    assert AuditEvent.objects.count() == before


def test_roles_and_other_clusters(team: Team, target: Target) -> None:
    assert _create(ApiClient(user=team.member), target).status == 403
    assert _create(team.as_owner(), target, cluster="someone-elses").status == 404
    assert not ScanSchedule.objects.exists()


def test_edit_and_delete_are_audited(team: Team, target: Target) -> None:
    owner = team.as_owner()
    created = _create(owner, target).body
    url = f"/api/v1/organizations/acme/scan-schedules/{created['id']}"

    body = {"cron": "0 6 * * 6", "timezone": "UTC", "cluster": "scanners", "enabled": True}
    assert team.as_viewer().call("PUT", url, body).status == 403
    edited = owner.call("PUT", url, body)
    assert edited.status == 200 and edited.body["cron"] == "0 6 * * 6"
    runs = [datetime.fromisoformat(r) for r in edited.body["next_runs"]]
    assert all(r.astimezone(UTC).isoweekday() == 6 and r.hour == 6 for r in runs)
    paused = owner.call("PUT", url, {**body, "enabled": False})
    assert paused.body["enabled"] is False and paused.body["next_runs"] == []
    assert Schedule.objects.get().next_run_at is None

    assert owner.delete(url).status == 204
    assert owner.get(url).status == 404
    assert not Schedule.objects.exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="scan_schedule.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "scan_schedule.create",
        "scan_schedule.update",
        "scan_schedule.update",
        "scan_schedule.delete",
    ]


def test_deleting_the_target_removes_its_schedules(team: Team, target: Target) -> None:
    owner = team.as_owner()
    _create(owner, target)
    assert owner.delete(f"/api/v1/organizations/acme/scan-targets/{target.pk}").status == 204
    assert not Schedule.objects.exists()


def test_a_downtime_over_many_runs_starts_one_scan_not_n(team: Team, target: Target) -> None:
    _create(team.as_owner(), target, cron="*/15 * * * *", timezone="UTC")
    core = Schedule.objects.get()
    assert core.next_run_at is not None
    # The server was down for two days: 192 quarter-hours went by.
    back_up = core.next_run_at + timedelta(days=2, minutes=1)

    report = scheduler.tick(back_up)
    assert report.schedules_fired == 1
    scan = Scan.objects.get()
    assert (scan.target, scan.profile, scan.created_by) == (target, "lightning", "scheduler")
    assert scan.job is not None and scan.job.cluster.name == "scanners"
    core.refresh_from_db()
    assert core.next_run_at is not None and core.next_run_at > back_up
    assert core.last_run_at == back_up

    assert scheduler.tick(back_up + timedelta(seconds=30)).schedules_fired == 0
    assert Scan.objects.count() == 1
    assert scheduler.tick(core.next_run_at).schedules_fired == 1
    assert Scan.objects.count() == 2
    assert AuditEvent.objects.filter(action="scan.start", actor_label="scheduler").count() == 2


def test_an_unverified_target_is_skipped_and_the_schedule_moves_on(
    team: Team, target: Target
) -> None:
    _create(team.as_owner(), target, cron="0 * * * *", timezone="UTC")
    Target.objects.filter(pk=target.pk).update(verified_at=None)
    core = Schedule.objects.get()
    assert core.next_run_at is not None
    due = core.next_run_at

    scheduler.tick(due)
    assert not Scan.objects.exists()
    core.refresh_from_db()
    assert core.next_run_at == due + timedelta(hours=1)
