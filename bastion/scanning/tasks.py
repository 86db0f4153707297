"""Server-side background work of the scanning app (Django Tasks)."""

from __future__ import annotations

from django_tasks import task


@task()
def render_scan_report(report_id: int) -> None:
    """Render and store one requested report (PDF, JSON, CSV or SARIF)."""
    from bastion.scanning.reports.service import generate

    generate(report_id)
