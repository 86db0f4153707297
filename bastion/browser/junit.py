"""JUnit XML of a stored run: the same writer as ``bastion test run --junit`` (``to_junit``),
over the results documents the server keeps on ``BrowserRun.results``. Used by the run page,
the API and the pipelines' browser steps."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from bastion.browser.models import BrowserRun
from bastion.browser.runner import RunResult, to_junit

logger = logging.getLogger(__name__)
_RESULT_FIELDS = frozenset(f.name for f in fields(RunResult))


def junit_of(results: Iterable[Mapping[str, Any]], name: str) -> str:
    """JUnit XML over stored results; a result that does not parse is logged and left out."""
    parsed = []
    for result in results:
        known = {k: v for k, v in result.items() if k in _RESULT_FIELDS}
        known.setdefault("test", str(result.get("slug") or "test"))
        try:
            parsed.append(RunResult.from_dict(known))
        except (TypeError, ValueError) as exc:
            logger.warning("browser result of %s left out of JUnit: %s", known["test"], exc)
    return to_junit(parsed, suite_name=name)


def run_name(run: BrowserRun) -> str:
    what = f"suite {run.suite.slug}" if run.suite else (run.test.slug if run.test else "run")
    where = f" on {run.environment.slug}" if run.environment else ""
    return f"{run.project.slug} {what}{where} #{run.pk}"


def run_junit(run: BrowserRun) -> str:
    return junit_of([r for r in run.results if isinstance(r, dict)], run_name(run))


def junit_filename(run: BrowserRun) -> str:
    return f"browser-run-{run.pk}-junit.xml"
