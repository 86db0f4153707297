"""Results of a run: frozen dataclasses that serialise to JSON (agent -> server) and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StepStatus = Literal["passed", "failed", "skipped"]
RunStatus = Literal["passed", "failed", "error"]
RESULT_VERSION = 1


@dataclass(frozen=True)
class StepResult:
    index: str
    action: str
    name: str
    status: StepStatus
    duration_ms: float = 0.0
    error: str = ""
    # A failed optional step does not fail the run; a failed soft step fails it but goes on.
    optional: bool = False
    soft: bool = False
    selector_used: str = ""
    # Relative paths inside the run's artifact folder.
    screenshot: str = ""
    console_errors: tuple[str, ...] = ()
    failed_requests: tuple[str, ...] = ()
    dialogs: tuple[str, ...] = ()
    # The module the step was imported from ("" for the test's own steps).
    module: str = ""
    # The value of the step's ``when`` condition, if it has one.
    condition: bool | None = None
    note: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        values = dict(data)
        for key in ("console_errors", "failed_requests", "dialogs"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


@dataclass(frozen=True)
class NamedScreenshot:
    name: str
    path: str
    step: str


@dataclass(frozen=True)
class RunResult:
    test: str
    status: RunStatus
    started_at: str
    duration_ms: float
    steps: tuple[StepResult, ...] = ()
    error: str = ""
    start_url: str = ""
    final_url: str = ""
    video: str = ""
    final_screenshot: str = ""
    screenshots: tuple[NamedScreenshot, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    version: int = RESULT_VERSION

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed_steps(self) -> list[StepResult]:
        return [step for step in self.steps if step.status == "failed" and not step.optional]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        values = dict(data)
        values["steps"] = tuple(StepResult.from_dict(step) for step in values.get("steps", ()))
        values["screenshots"] = tuple(
            NamedScreenshot(**shot) for shot in values.get("screenshots", ())
        )
        values["variables"] = dict(values.get("variables", {}))
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        return cls.from_dict(json.loads(text))


def to_junit(results: Iterable[RunResult], suite_name: str = "bastion browser tests") -> str:
    """One <testsuite> per run (a test), one <testcase> per executed step."""
    root = ET.Element("testsuites", name=suite_name)
    for run in results:
        executed = [step for step in run.steps if step.status != "skipped"]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=run.test,
            tests=str(len(run.steps)),
            failures=str(sum(1 for s in run.steps if s.status == "failed" and not s.optional)),
            errors="1" if run.status == "error" else "0",
            skipped=str(len(run.steps) - len(executed)),
            time=f"{run.duration_ms / 1000:.3f}",
            timestamp=run.started_at,
        )
        for step in run.steps:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=run.test,
                name=f"{step.index} {step.name or step.action}",
                time=f"{step.duration_ms / 1000:.3f}",
            )
            if step.status == "skipped":
                ET.SubElement(case, "skipped", message=step.note or "skipped")
            elif step.status == "failed" and not step.optional:
                failure = ET.SubElement(case, "failure", message=step.error, type=step.action)
                failure.text = step.error
            if step.console_errors or step.failed_requests:
                err = ET.SubElement(case, "system-err")
                err.text = "\n".join((*step.console_errors, *step.failed_requests))
        if run.status == "error":
            error = ET.SubElement(suite, "error", message=run.error)
            error.text = run.error
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
