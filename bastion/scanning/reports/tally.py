"""Each scan's findings by severity, counted once when its result is stored, for the reports'
trend (the findings table keeps only each finding's latest scan, so history is kept here).

``record_scan_result`` saves the finished scan inside its transaction after upserting the
findings; the post-save hook counts the findings that scan saw in that same transaction.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models.signals import post_save

from bastion.scanning.models import Finding, Scan, ScanState

DONE = (ScanState.FINISHED, ScanState.FAILED)


def count(scan: Scan) -> dict[str, int]:
    severities = Finding.objects.filter(last_seen_scan=scan).values_list("severity", flat=True)
    return dict(Counter(severities))


def _on_scan_saved(sender: type[Scan], instance: Scan, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if instance.state not in DONE or (fields is not None and "state" not in fields):
        return
    counts = count(instance)
    if counts != instance.severity_counts:
        instance.severity_counts = counts
        Scan.objects.filter(pk=instance.pk).update(severity_counts=counts)


def connect() -> None:
    post_save.connect(_on_scan_saved, sender=Scan, dispatch_uid="scan-severity-tally")
