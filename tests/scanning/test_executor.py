"""The agent's scan executor, called as the agent calls it, against the real labs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from bastion.agent.executors import JobContext, executor_for
from bastion.scanning.executor import RESULT_MARKER, run_scan_job
from tests.labs.raw import serve_raw, slow_drip
from tests.scanning.conftest import ground_truth


class Log:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self.lock:
            self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def context(
    tmp_path: Path, payload: dict[str, object], log: Log, cancel: threading.Event | None = None
) -> JobContext:
    return JobContext(
        job_id=1,
        kind="scan",
        payload=payload,
        timeout_s=300,
        workdir=tmp_path,
        env={},
        log=log,
        cancel_requested=lambda: "canceled" if cancel and cancel.is_set() else None,
        grace_s=5.0,
    )


def test_scan_job_runs_the_engine_and_reports(vulnerable_lab: str, tmp_path: Path) -> None:
    run = executor_for("scan")
    assert run is run_scan_job  # importing the module registered it
    log = Log()

    outcome = run(context(tmp_path, {"target": vulnerable_lab, "profile": "lightning"}, log))

    assert outcome.exit_status == 0
    assert "[finding] high reflected-xss" in log.text
    result_line = next(line for line in log.text.splitlines() if line.startswith(RESULT_MARKER))
    report = json.loads(result_line[len(RESULT_MARKER) :])
    assert report == json.loads((tmp_path / "scan-result.json").read_text())
    found = {
        (
            f["type"],
            "/" + f["url"][len(vulnerable_lab) :]
            if f["url"].startswith(vulnerable_lab)
            else f["url"],
            f["parameter"],
        )
        for f in report["findings"]
    }
    assert found == ground_truth("vulnerable")


def test_scan_job_stops_on_cancel(tmp_path: Path) -> None:
    cancel = threading.Event()
    log = Log()
    run = executor_for("scan")
    assert run is not None
    with serve_raw(slow_drip) as base:
        timer = threading.Timer(0.5, cancel.set)
        timer.start()
        outcome = run(context(tmp_path, {"target": base}, log, cancel))
        timer.cancel()
    assert (outcome.exit_status, outcome.signal_reason) == (130, "canceled")
    assert "cancelled" in log.text


def test_scan_job_refuses_bad_payload_and_forbidden_targets(tmp_path: Path) -> None:
    run = executor_for("scan")
    assert run is not None
    log = Log()
    assert run(context(tmp_path, {"target": 42}, log)).exit_status == 2
    assert "invalid job payload" in log.text
    log = Log()
    outcome = run(context(tmp_path, {"target": "http://169.254.169.254/", "allow_hosts": []}, log))
    assert outcome.exit_status == 2 and "AddressNotAllowed" in log.text
