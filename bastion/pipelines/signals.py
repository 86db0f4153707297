"""Advance a build as soon as one of its jobs finishes (after the finish is committed).

The hook is only the fast path: if the process dies between the commit and the hook, the
scheduler's periodic ``bastion.pipelines.scheduler.sweep`` advances the build all the same.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from bastion.jobs import gates
from bastion.jobs.models import FINISHED_STATES, Job
from bastion.pipelines import cluster_secrets, verification

_UID = "bastion.pipelines.job_finished"


def _job_saved(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    from bastion.pipelines.scheduler import ORIGIN_PREFIX, on_job_finished

    if not instance.origin.startswith(ORIGIN_PREFIX) or instance.state not in FINISHED_STATES:
        return
    fields = kwargs.get("update_fields")
    if fields is not None and "state" not in fields:
        return
    transaction.on_commit(lambda: on_job_finished(instance), robust=True)


def connect() -> None:
    post_save.connect(_job_saved, sender=Job, dispatch_uid=_UID)
    verification.connect()  # scan and browser jobs of verification steps
    gates.register(cluster_secrets.dispatch_gate)  # policy re-check and secrets at dispatch
