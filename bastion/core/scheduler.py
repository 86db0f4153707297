"""The scheduler: one leader at a time runs the periodic sweeps and fires due schedules.

Leadership is a PostgreSQL session advisory lock (several hosts may run `bastion scheduler`;
one works, the others wait), or a file lock next to the SQLite database on one machine.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from bastion.core import notifications, schedules
from bastion.core.models import Schedule

logger = logging.getLogger(__name__)
LEADER_LOCK_ID = 0x42A5_5C4E
MAIL_PRUNE_EVERY_S = 3600.0


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...


@dataclass
class FileLeaderLock:
    path: Path
    handle: IO[str] | None = None

    def try_acquire(self) -> bool:
        if self.handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


@dataclass
class PostgresLeaderLock:
    """Held on a dedicated connection so Django's connection recycling cannot drop it."""

    dsn: dict[str, Any]
    conn: Any = None

    def try_acquire(self) -> bool:
        import psycopg

        if self.conn is not None and not self.conn.closed:
            return True
        self.conn = psycopg.connect(**self.dsn, autocommit=True)
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", [LEADER_LOCK_ID]).fetchone()
        if row and row[0]:
            return True
        self.conn.close()
        self.conn = None
        return False

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.close()
        self.conn = None


def leader_lock() -> LeaderLock:
    if connection.vendor == "postgresql":
        params = connection.get_connection_params()
        dsn = {
            k: v for k, v in params.items() if k in {"dbname", "user", "password", "host", "port"}
        }
        return PostgresLeaderLock(dsn)
    return FileLeaderLock(Path(settings.DATA_DIR) / "scheduler.lock")


@dataclass
class TickReport:
    schedules_fired: int = 0
    errors: list[str] = field(default_factory=list)


def fire_due_schedules(now: datetime) -> int:
    """Fire each due schedule once, whatever number of its runs fell in a downtime."""
    fired = 0
    for schedule in Schedule.objects.filter(enabled=True, next_run_at__isnull=True):
        upcoming = schedules.next_runs(schedule.cron, schedule.timezone, now)[0]
        Schedule.objects.filter(pk=schedule.pk, next_run_at__isnull=True).update(
            next_run_at=upcoming
        )
    for schedule in Schedule.objects.filter(enabled=True, next_run_at__lte=now).order_by(
        "next_run_at"
    ):
        due_at = schedule.next_run_at
        assert due_at is not None
        upcoming = schedules.next_runs(schedule.cron, schedule.timezone, now)[0]
        # Claim by compare-and-set on next_run_at: a second scheduler (or a restarted one)
        # cannot fire the same run again.
        claimed = Schedule.objects.filter(pk=schedule.pk, next_run_at=due_at).update(
            next_run_at=upcoming, last_run_at=now
        )
        if not claimed:
            continue
        handler = schedules.handler_for(schedule.kind)
        if handler is None:
            logger.warning("schedule %s has kind %r with no handler", schedule.pk, schedule.kind)
            continue
        try:
            handler(schedule, due_at)
            fired += 1
        except Exception:
            # One broken schedule must not stop the others; the failure is logged with its id.
            logger.exception("schedule %s (%s) failed to fire", schedule.pk, schedule.kind)
    return fired


def tick(now: datetime | None = None) -> TickReport:
    from bastion.browser.runs import sweep as finish_browser_runs
    from bastion.jobs.dispatch import sweep
    from bastion.pipelines.scheduler import sweep as advance_builds
    from bastion.scanning.signals import sweep as sync_scans
    from bastion.scanning.sweeps import sweep as scanning_sweeps

    now = now or timezone.now()
    report = TickReport()
    sweep(now)
    advance_builds()  # builds whose jobs were lost, or whose post-finish hook never ran
    finish_browser_runs()  # browser runs whose last job finished without the hook running
    sync_scans()  # scans whose job started or finished without the hook catching it
    scanning_sweeps(now)  # expired accepted risks reopen; overdue findings alert (once a day)
    report.schedules_fired = fire_due_schedules(now)
    notifications.retry_failed(now)
    return report


def run(stop: threading.Event, interval_s: float = 1.0) -> None:
    """Run until ``stop`` is set: wait for leadership, then tick every ``interval_s``."""
    lock = leader_lock()
    last_prune: float | None = None  # the first tick prunes (monotonic time starts at boot)
    was_leader = False
    try:
        while not stop.is_set():
            close_old_connections()
            if not lock.try_acquire():
                if was_leader:
                    logger.warning("lost scheduler leadership")
                was_leader = False
                stop.wait(5.0)
                continue
            if not was_leader:
                logger.info("scheduler is the leader")
                was_leader = True
            try:
                tick()
                if last_prune is None or time.monotonic() - last_prune > MAIL_PRUNE_EVERY_S:
                    from bastion.browser.mail.sink import prune_messages

                    prune_messages(settings.CONFIG.mail_retention_days)
                    last_prune = time.monotonic()
            except Exception:
                # A database hiccup must not kill the scheduler; the next tick retries.
                logger.exception("scheduler tick failed")
            stop.wait(interval_s)
    finally:
        lock.release()
