"""Server-side background work of the core app (run by ``bastion worker`` / django-tasks-db)."""

from __future__ import annotations

from django_tasks import task


@task()
def deliver_notification(delivery_id: int) -> None:
    from bastion.core.notifications import deliver

    deliver(delivery_id)
