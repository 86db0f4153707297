"""Live progress of a scan, read (never written) from its job's log: the executor logs
``[scan] checks D/T, R requests, F findings`` each time a check completes."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def progress_of(scan: Scan) -> ScanProgress:
    """Finished scans report their stored figures; running ones the last progress line."""
    if scan.state not in (ScanState.QUEUED, ScanState.RUNNING):
        total = len(scan.checks)
        return ScanProgress(
            total, total, scan.requests_sent, Finding.objects.filter(last_seen_scan=scan).count()
        )
    if scan.job_id is None:
        return ScanProgress(0, 0, 0, 0)
    chunks = JobLogChunk.objects.filter(job_id=scan.job_id).order_by("-seq")[:TAIL_CHUNKS]
    text = "".join(reversed(list(chunks.values_list("data", flat=True))))
    matches = _LINE.findall(text)
    if not matches:
        return ScanProgress(0, 0, 0, 0)
    done, total, requests, findings = (int(v) for v in matches[-1])
    return ScanProgress(done, total, requests, findings)
