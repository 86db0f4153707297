"""A scan schedule and a ready report of a target, for the route matrices (tests/api, tests/web)."""

from __future__ import annotations

from django.core.files.base import ContentFile

from bastion.core.access import Principal
from bastion.jobs.models import Cluster
from bastion.scanning import scheduling
from bastion.scanning.models import (
    ReportFormat,
    ReportState,
    Scan,
    ScanReport,
    ScanSchedule,
    Target,
)


def schedule_and_report(target: Target, scan: Scan, cluster: Cluster) -> tuple[int, int]:
    """Ids of a weekday-morning schedule of ``target`` and a stored JSON report of ``scan``."""
    owner = Principal.system("tests", target.project.organization)
    row = scheduling.create_schedule(
        owner, target, cluster, scheduling.ScheduleSpec(cron="0 8 * * 1-5")
    )
    report = ScanReport(
        target=target, scan=scan, format=ReportFormat.JSON, state=ReportState.READY, progress=100
    )
    report.file.save("report.json", ContentFile(b'{"findings": []}'), save=False)
    report.size = 16
    report.save()
    return row.pk, report.pk


def schedule_of(target_id: int) -> int:
    return ScanSchedule.objects.filter(target_id=target_id).values_list("pk", flat=True)[0]


def report_of(target_id: int) -> int:
    return ScanReport.objects.filter(target_id=target_id).values_list("pk", flat=True)[0]
