"""Stored files (reports, attachments, artifacts) leave storage with their rows.

Django deletes a row, not the file its ``FileField`` names; without this, deleting a target, a
finding or a job would leave its reports and evidence behind in storage, unreachable and never
cleaned up. The file goes only once the deleting transaction commits, so a rolled-back delete
keeps it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete

logger = logging.getLogger(__name__)


def delete_files_with(model: type[models.Model], *fields: str) -> None:
    """Delete the files in ``fields`` of each deleted ``model`` row after the delete commits."""

    def drop(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
        for name in fields:
            stored = getattr(instance, name)
            if stored and stored.name:
                transaction.on_commit(_deleter(stored.storage, stored.name))

    post_delete.connect(drop, sender=model, weak=False, dispatch_uid=f"blobs:{model._meta.label}")


def _deleter(storage: Any, name: str) -> Any:
    def delete() -> None:
        try:
            storage.delete(name)
        except OSError:
            logger.warning("could not delete stored file %s", name, exc_info=True)

    return delete
