"""Deploy, then verify, in Chromium: start a build whose scan:, browser: and release: steps run
on real agents, watch the build page follow them live, open the linked scan, and find the
deploy on the errors project page.

A real server process (gunicorn, its own database) with a real scheduler and two real agents,
as the pipelines end-to-end tests do: the live server's in-memory SQLite locks whole tables
under agents, a page and a build at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.agent import executors
from tests.cli.conftest import Cli, cli, cli_template  # noqa: F401 - fixtures
from tests.labs.browser_site.server import LabServer
from tests.pipelines.server import BASTION, Server, wait_until
from tests.pipelines.verification_world import GREET, SOFT
from tests.scanning.conftest import vulnerable_lab  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not {"scan", "browser"} <= set(getattr(executors, "KIND_MODULES", {})),
        reason="the agent does not load the scan and browser executors",
    ),
]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "verify-then-release-42"
# What the server's database holds before the build: a person, a verified target, a suite.
SETUP = """
import json, sys
from bastion.browser import services as browser
from bastion.core import services as core
from bastion.core.access import Principal
from bastion.core.context import Actor
from bastion.core.models import Organization
from bastion.jobs.models import Cluster
from bastion.pipelines import services as pipelines
from bastion.scanning import services as scanning
given = json.loads(sys.stdin.read())
org = Organization.objects.get(slug="acme")
system = Principal.system("e2e", organization=org)
user, _ = core.create_user(
    Actor.system("e2e"), username="ada", email="ada@example.test", password=given["password"]
)
core.add_member(system, org, user, "owner")
project = core.create_project(system, org, slug="shop", name="Shop")
target = scanning.create_target(system, project, name="lab", base_url=given["scan_lab"])
scanning.verify_target(system, target)
browser.save_test(system, project, given["test"])
browser.create_environment(system, project, slug="lab", name="Lab", base_url=given["browser_lab"])
browser.create_suite(system, project, slug="smoke", tests=["greet"])
cluster = Cluster.objects.get(organization=org, name="default")
pipelines.create_pipeline(system, org, slug="deploy", yaml=given["yaml"], cluster=cluster)
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[LabServer]:
    with LabServer() as server:
        yield server


@pytest.fixture
def server(cli: Cli, tmp_path: Path, vulnerable_lab: str, lab: LabServer) -> Iterator[Server]:  # noqa: F811
    running = Server(cli, tmp_path)
    try:
        try:
            running.start()
        except AssertionError:  # a loaded machine boots it (and builds its schema) slowly
            wait_until(lambda: _answers(running.url), timeout=180, step=1.0)
        given = {"password": PASSWORD, "scan_lab": vulnerable_lab, "browser_lab": lab.url,
                 "test": GREET, "yaml": SOFT}  # fmt: skip
        cli.run("manage", "shell", "-c", SETUP, stdin=json.dumps(given), check=True,
                PYTHONPATH=str(ROOT))  # fmt: skip
        running._spawn("scheduler", [BASTION, "scheduler"])
        running.agent("a1")
        running.agent("a2")
        yield running
    finally:
        running.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login/", timeout=20).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_on_page(page: Any, selector: str, rounds: int = 90) -> None:
    """Until htmx shows ``selector`` (bounded: rounds of at most 2 s each)."""
    for _ in range(rounds):
        try:
            page.locator(selector).first.wait_for(timeout=2_000)
            return
        except Exception as exc:
            if "Timeout" not in type(exc).__name__:
                raise
    raise AssertionError(f"{selector} did not show up")


def test_a_build_verifies_with_a_scan_a_browser_suite_and_marks_the_release(
    server: Server, browser: Any, screenshots: Path
) -> None:
    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(f"{server.url}/login/?next=/o/acme/pipelines/deploy/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/acme/pipelines/deploy/")
    page.fill("input[name=commit]", "cafe123")
    page.click("button:has-text('Start build')")
    page.wait_for_url("**/o/acme/pipelines/deploy/builds/1/")
    page.locator("#step-scan .verification a", has_text="lightning scan of lab").wait_for()
    page.screenshot(path=str(screenshots / "60-build-verifying.png"), full_page=True)

    # htmx follows the build until it ends: findings, tests and the release appear.
    _wait_on_page(page, "#step-release .verification")
    _wait_on_page(page, ".stat .badge:has-text('passed')")
    scan_card = page.locator("#step-scan .verification")
    assert scan_card.locator(".badge", has_text="high").count() == 1
    assert "at or above high" in scan_card.inner_text().lower()
    assert "soft failed" in page.locator("#step-scan .step-title").inner_text().lower()
    assert "1 passed" in page.locator("#step-smoke .verification").inner_text().lower()
    assert "release cafe123 to production" in page.locator("#step-release").inner_text().lower()
    page.screenshot(path=str(screenshots / "61-build-verified.png"), full_page=True)

    page.click("#step-scan .verification a")
    page.wait_for_url("**/o/acme/scanning/scans/*/")
    page.goto(f"{server.url}/o/acme/errors/shop/")
    deploys = page.locator("[data-testid=deploys]")
    assert "cafe123" in deploys.inner_text() and "production" in deploys.inner_text()
    page.screenshot(path=str(screenshots / "62-errors-deploys.png"), full_page=True)
    deploys.locator("a", has_text="#1").click()
    page.wait_for_url("**/o/acme/pipelines/deploy/builds/1/")
    assert problems == []
