"""A test's history: its results across runs, pass rate and flakiness."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from bastion.browser.models import BrowserRun, StoredTest
from bastion.browser.services import runs_for
from bastion.core.access import Principal

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class Entry:
    run: BrowserRun
    result: dict[str, Any]
    version: int

    @property
    def status(self) -> str:
        return str(self.result.get("status", ""))


@dataclass(frozen=True)
class History:
    entries: tuple[Entry, ...]

    @property
    def runs(self) -> int:
        return len(self.entries)

    @property
    def passed(self) -> int:
        return sum(1 for entry in self.entries if entry.status == "passed")

    @property
    def pass_rate(self) -> float | None:
        return round(100.0 * self.passed / self.runs, 1) if self.entries else None

    @property
    def flaky(self) -> bool:
        """A failure followed by a pass of the same version (the test did not change)."""
        ordered = list(reversed(self.entries))  # oldest first
        return any(
            before.status != "passed"
            and after.status == "passed"
            and before.version == after.version
            for before, after in pairwise(ordered)
        )


def history_of(principal: Principal, test: StoredTest, limit: int = HISTORY_LIMIT) -> History:
    """The finished runs that ran ``test``, newest first."""
    runs = (
        runs_for(principal, test.project)
        .filter(versions__has_key=test.slug, finished_at__isnull=False)
        .select_related("environment")
        .order_by("-created_at")[:limit]
    )
    entries = []
    for run in runs:
        for result in run.results:
            if isinstance(result, dict) and result.get("slug") == test.slug:
                entries.append(Entry(run, result, int(run.versions.get(test.slug, 0))))
    return History(tuple(entries))
