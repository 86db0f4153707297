"""Fixtures for browser tests: the lab site, and one real Chromium per test module."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.browser.runner import RunResult
from bastion.browser.runner.session import BrowserSession, RunOptions
from bastion.browser.spec import load_test
from tests.labs.browser_site.server import LabServer

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture(scope="session")
def lab() -> Iterator[LabServer]:
    with LabServer() as server:
        yield server


class Browser:
    """A started BrowserSession on its own event loop, driven from synchronous tests."""

    def __init__(self, lab: LabServer, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.loop = asyncio.Runner()
        self.session = BrowserSession()
        self.loop.run(self.session.start())

    def run(self, test: dict[str, Any], **options: Any) -> RunResult:
        options.setdefault("base_url", self.lab.url)
        options.setdefault("record_video", False)
        options.setdefault("final_screenshot", False)
        options.setdefault(
            "artifacts_dir", self.tmp / f"run-{id(test)}-{len(test.get('steps', []))}"
        )
        return self.loop.run(self.session.run(load_test(test), RunOptions(**options)))

    def close(self) -> None:
        self.loop.run(self.session.close())
        self.loop.close()


@pytest.fixture(scope="module")
def browser(lab: LabServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium = Browser(lab, tmp_path_factory.mktemp("browser"))
    yield chromium
    chromium.close()


def statuses(result: RunResult) -> list[tuple[str, str, str]]:
    return [(step.index, step.action, step.status) for step in result.steps]


def explain(result: RunResult) -> str:
    return "\n".join(f"{s.index} {s.action} {s.status} {s.error} {s.note}" for s in result.steps)
