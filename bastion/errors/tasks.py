"""Background work of the errors module (run by ``bastion worker`` / django-tasks-db)."""

from __future__ import annotations

from datetime import datetime

from django_tasks import task


@task()
def send_review_digest(organization_id: int, due_at: str, tz: str) -> int:
    from bastion.core.models import Organization
    from bastion.errors.digest import send_digest

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    return send_digest(organization, datetime.fromisoformat(due_at), tz)
