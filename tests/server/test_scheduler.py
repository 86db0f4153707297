"""The scheduler: due schedules fire once (also after downtime), and only one leader runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from bastion.core import schedules
from bastion.core.models import Schedule
from bastion.core.scheduler import FileLeaderLock, fire_due_schedules, leader_lock
from tests.factories import make_org, make_user

fired: list[tuple[int, datetime]] = []


@schedules.register("test-kind")
def _record(schedule: Schedule, due_at: datetime) -> None:
    fired.append((schedule.pk, due_at))


@pytest.fixture(autouse=True)
def _clear() -> None:
    fired.clear()


@pytest.mark.django_db
def test_missed_runs_during_downtime_fire_once_and_next_run_moves_forward() -> None:
    org = make_org(make_user())
    # Every 5 minutes; the scheduler was down for an hour: twelve runs were missed.
    due = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    schedule = Schedule.objects.create(
        organization=org, kind="test-kind", object_id="1", cron="*/5 * * * *", next_run_at=due
    )
    now = due + timedelta(hours=1, minutes=2)
    assert fire_due_schedules(now) == 1
    assert fired == [(schedule.pk, due)]
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    assert schedule.last_run_at == now
    # Calling again at the same instant fires nothing more.
    assert fire_due_schedules(now) == 0
    assert len(fired) == 1


@pytest.mark.django_db
def test_time_zone_is_honoured_for_weekday_business_hours() -> None:
    org = make_org(make_user())
    schedule = Schedule.objects.create(
        organization=org,
        kind="test-kind",
        object_id="1",
        cron="30 17 * * 1-5",
        timezone="Europe/Paris",
    )
    friday_noon = datetime(2026, 3, 6, 11, 0, tzinfo=UTC)
    fire_due_schedules(friday_noon)  # initializes next_run_at without firing
    schedule.refresh_from_db()
    assert fired == []
    # 17:30 in Paris (UTC+1 in March before DST) is 16:30 UTC.
    assert schedule.next_run_at == datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
    runs = schedules.next_runs("30 17 * * 1-5", "Europe/Paris", friday_noon, count=2)
    assert runs[1].astimezone(UTC) == datetime(2026, 3, 9, 16, 30, tzinfo=UTC)  # Monday


def test_invalid_cron_and_time_zone_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValidationError) as cron_error:
        schedules.validate("61 * * * *", "UTC")
    assert "cron" in cron_error.value.message_dict
    with pytest.raises(ValidationError) as tz_error:
        schedules.validate("0 8 * * *", "Mars/Olympus")
    assert "timezone" in tz_error.value.message_dict


def test_file_leader_lock_admits_one_leader(tmp_path: Path) -> None:
    first, second = FileLeaderLock(tmp_path / "s.lock"), FileLeaderLock(tmp_path / "s.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


@pytest.mark.django_db
def test_leader_lock_of_the_configured_database_admits_one_leader() -> None:
    first, second = leader_lock(), leader_lock()
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
    finally:
        first.release()
        second.release()
