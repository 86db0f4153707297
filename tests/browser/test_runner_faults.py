"""Faults: each one fails its step with a clear reason, the run finishes, the session goes on."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import psutil

from tests.browser.conftest import Browser, explain


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_invalid_selectors_fail_with_the_parse_error(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "bad selector",
            "start_url": "/form",
            "steps": [{"click": ["css=##x", "xpath=//["]}, {"log": "after"}],
        }
    )
    step = result.steps[1]
    assert step.status == "failed"
    assert step.error.startswith("invalid selector css=##x: ")
    assert "invalid selector xpath=//[" in step.error
    assert result.steps[2].status == "skipped"
    assert result.status == "failed"


def test_a_page_that_never_answers_times_out(browser: Browser) -> None:
    result = browser.run(
        {"name": "hang", "start_url": "/hang", "timeout_ms": 1500, "steps": [{"log": "x"}]}
    )
    assert result.steps[0].error == f"page did not load within 1500 ms: {browser.lab.url}/hang"
    assert result.steps[1].note == "not run: the start URL did not load"
    assert result.status == "failed"


def test_a_refused_connection_is_named(browser: Browser) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    result = browser.run({"name": "refused", "start_url": url, "steps": []})
    assert result.steps[0].error == "page did not load: net::ERR_CONNECTION_REFUSED"


def test_a_slow_page_within_the_timeout_passes(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "slow",
            "start_url": "/slow?ms=1200",
            "steps": [{"assert_text": "slow page after 1200 ms", "target": "#slow"}],
        }
    )
    assert result.status == "passed", explain(result)


def test_a_busy_page_fails_the_step_and_the_next_run_is_fine(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "busy",
            "start_url": "/busy",
            "timeout_ms": 1500,
            "steps": [{"click": "#spin"}, {"assert_title": "Busy"}, {"log": "after"}],
        }
    )
    assert result.status == "failed"
    failed = next(s for s in result.steps if s.status == "failed")
    assert "timed out" in failed.error or "not responding" in failed.error
    assert result.steps[-1].status == "skipped"
    after = browser.run(
        {"name": "after busy", "start_url": "/form", "steps": [{"assert_title": "Form"}]}
    )
    assert after.status == "passed", explain(after)


def test_endless_dialogs_are_cut_off(browser: Browser) -> None:
    result = browser.run(
        {
            "name": "dialogs",
            "start_url": "/dialogs",
            "steps": [{"click": "#endless"}, {"log": "never"}],
        },
        max_dialogs_per_step=10,
    )
    assert result.steps[1].error == "endless dialogs: more than 10 in one step"
    assert len(result.steps[1].dialogs) >= 10
    assert result.steps[2].status == "skipped"
    assert result.status == "failed"


def test_unexpected_download_fails_an_allowed_one_is_kept(browser: Browser, tmp_path: Path) -> None:
    unexpected = browser.run(
        {"name": "dl", "start_url": "/downloads", "steps": [{"click": "#dl"}, {"wait": 1500}]}
    )
    assert unexpected.status == "failed"
    assert "unexpected download: 'report.txt'" in unexpected.error
    allowed = browser.run(
        {
            "name": "dl ok",
            "start_url": "/downloads",
            "steps": [{"click": "#dl", "allow_download": True}],
        },
        artifacts_dir=tmp_path,
    )
    assert allowed.status == "passed", explain(allowed)
    assert (tmp_path / "downloads" / "report.txt").read_text() == "report body\n"


def test_unexpected_popup_fails_and_is_closed(browser: Browser) -> None:
    result = browser.run(
        {"name": "popup", "start_url": "/tabs", "steps": [{"click": "#popup"}, {"wait": 1500}]}
    )
    assert result.status == "failed"
    assert f"unexpected pop-up: {browser.lab.url}/tabs/target?popup=1" in result.error


def test_run_time_limit(browser: Browser) -> None:
    result = browser.run(
        {"name": "long", "steps": [{"wait": 20_000}, {"log": "late"}]},
        max_run_s=2.0,
    )
    assert result.steps[0].error == "the run went over its time limit", explain(result)
    assert result.steps[1].status == "skipped"
    assert result.status == "failed"
    assert result.duration_ms < 20_000


def _browser_processes() -> list[psutil.Process]:
    me = psutil.Process(os.getpid())
    found = []
    for child in me.children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if (
            cmdline
            and "chromium" in cmdline[0]
            and not any(a.startswith("--type=") for a in cmdline)
        ):
            found.append(child)
    return found


def test_a_browser_crash_fails_the_step_and_the_session_relaunches(browser: Browser) -> None:
    loaded = threading.Event()

    def kill_once_loaded() -> None:
        # Kill the browser while step 1 waits for an element that never comes.
        if loaded.wait(timeout=60):
            time.sleep(0.5)
            for process in _browser_processes():
                process.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_once_loaded)
    killer.start()
    try:
        result = browser.run(
            {
                "name": "crash",
                "start_url": "/form",
                "steps": [{"wait_for_element": "#never-there", "timeout_ms": 20_000}, {"log": "x"}],
            },
            on_step=lambda step: loaded.set() if step.index == "0" else None,
        )
    finally:
        loaded.set()
        killer.join(timeout=10)
    assert result.status == "failed"
    failed = result.steps[1]
    assert failed.status == "failed"
    assert failed.error == "the browser crashed or was closed", explain(result)
    assert result.steps[2].status in ("failed", "skipped")
    after = browser.run(
        {"name": "after crash", "start_url": "/form", "steps": [{"assert_title": "Form"}]}
    )
    assert after.status == "passed", explain(after)
