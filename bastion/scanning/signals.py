"""Keep scans in step with their jobs: a scan job that starts or finishes updates its Scan, and
a finished one has its report stored as findings (after the job's change is committed).

The hook is only the fast path: if the process dies between the commit and the hook, or the
job changed through a bulk UPDATE (dispatch, the lost-agent sweep), the scheduler's periodic
``sweep`` below catches the scan up all the same. ``sync_scan_from_job`` is idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from bastion.core.context import Actor
from bastion.jobs.models import ACTIVE_STATES, FINISHED_STATES, Job
from bastion.scanning.models import Scan, ScanState

logger = logging.getLogger(__name__)

ORIGIN = "scanning"
SWEEP_LIMIT = 100
_UID = "bastion.scanning.job_changed"


def sync_job(job_id: int) -> None:
    """Sync the scan of one job, if it has one (what the hook runs after commit)."""
    from bastion.scanning.services import sync_scan_from_job

    scan = (
        Scan.objects.select_related("job", "target__project__organization")
        .filter(job_id=job_id, state__in=(ScanState.QUEUED, ScanState.RUNNING))
        .first()
    )
    if scan is not None:
        sync_scan_from_job(Actor.system("scanning"), scan)


def _job_saved(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    if instance.origin != ORIGIN or instance.state not in (*FINISHED_STATES, *ACTIVE_STATES):
        return
    fields = kwargs.get("update_fields")
    if fields is not None and "state" not in fields:
        return
    job_id = instance.pk
    transaction.on_commit(lambda: sync_job(job_id), robust=True)


def stale_scan_ids(limit: int = SWEEP_LIMIT) -> list[int]:
    """Scans behind their job: queued while the job runs, or unfinished while it is done."""
    queued = Scan.objects.filter(state=ScanState.QUEUED, job__state__in=ACTIVE_STATES)
    done = Scan.objects.filter(
        state__in=(ScanState.QUEUED, ScanState.RUNNING), job__state__in=FINISHED_STATES
    )
    ids: set[int] = set()
    for query in (queued, done):
        ids.update(query.values_list("pk", flat=True)[:limit])
    return sorted(ids)[:limit]


def sweep() -> int:
    """Catch up every scan whose job moved on (run by the scheduler's tick); returns how many."""
    from bastion.scanning.services import sync_scan_from_job

    ids = stale_scan_ids()
    scans = Scan.objects.select_related("job", "target__project__organization").filter(pk__in=ids)
    for scan in scans:
        try:
            sync_scan_from_job(Actor.system("scanning"), scan)
        except Exception:
            # One unreadable report must not stop the others; logged with its id, retried next tick.
            logger.exception("could not sync scan %s with its job", scan.pk)
    return len(ids)


def connect() -> None:
    post_save.connect(_job_saved, sender=Job, dispatch_uid=_UID)
