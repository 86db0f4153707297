"""Store a browser run's results as soon as its last job finishes (after the finish commits).

The hook is only the fast path: ``bastion.browser.runs.sweep``, run by the scheduler's tick,
finishes the runs whose hook never ran.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from bastion.jobs.models import FINISHED_STATES, Job

_UID = "bastion.browser.job_finished"


def _job_saved(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    from bastion.browser.runs import ORIGIN_PREFIX, on_job_finished

    if not instance.origin.startswith(ORIGIN_PREFIX) or instance.state not in FINISHED_STATES:
        return
    fields = kwargs.get("update_fields")
    if fields is not None and "state" not in fields:
        return
    transaction.on_commit(lambda: on_job_finished(instance), robust=True)


def connect() -> None:
    post_save.connect(_job_saved, sender=Job, dispatch_uid=_UID)
