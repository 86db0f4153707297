"""Live progress of a scan, read (never written) from its job's log: the executor logs
``[scan] checks D/T, R requests, F findings`` each time a check completes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Count

from bastion.jobs.models import JobLogChunk
from bastion.scanning.models import Finding, Scan, ScanState

_LINE = re.compile(r"\[scan\] checks (\d+)/(\d+), (\d+) requests, (\d+) findings")
TAIL_CHUNKS = 20


@dataclass(frozen=True)
class ScanProgress:
    checks_done: int
    checks_total: int
    requests_sent: int
    findings: int

    @property
    def percent(self) -> int:
        return 100 * self.checks_done // self.checks_total if self.checks_total else 0


def findings_seen(scans: list[Scan]) -> dict[int, int]:
    """How many findings each scan saw last, in one query (for lists of scans)."""
    rows = (
        Finding.objects.filter(last_seen_scan__in=scans)
        .values("last_seen_scan")
        .annotate(n=Count("pk"))
    )
    return {row["last_seen_scan"]: row["n"] for row in rows}


def progress_of(scan: Scan, seen: dict[int, int] | None = None) -> ScanProgress:
    """Finished scans report their stored figures (``seen``: counts from ``findings_seen``);
    running ones the last progress line of their job's log."""
    if scan.state not in (ScanState.QUEUED, ScanState.RUNNING):
        total = len(scan.checks)
        if seen is None:
            seen = findings_seen([scan])
        return ScanProgress(total, total, scan.requests_sent, seen.get(scan.pk, 0))
    if scan.job_id is None:
        return ScanProgress(0, 0, 0, 0)
    chunks = JobLogChunk.objects.filter(job_id=scan.job_id).order_by("-seq")[:TAIL_CHUNKS]
    text = "".join(reversed(list(chunks.values_list("data", flat=True))))
    matches = _LINE.findall(text)
    if not matches:
        return ScanProgress(0, 0, 0, 0)
    done, total, requests, findings = (int(v) for v in matches[-1])
    return ScanProgress(done, total, requests, findings)
