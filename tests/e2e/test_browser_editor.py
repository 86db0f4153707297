"""The browser-test editor in Chromium: create a test, add steps, run it on a real agent against
the lab site in an environment, see each step's result, accept the baseline, run again and
compare; then the suite, environment and module pages. Every page is screenshotted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError

from bastion.browser import runs, services
from bastion.browser.models import Baseline, BrowserRun, RunStatus, StoredTest
from tests.agent.conftest import Agents, agents, fast_intervals, wait_for  # noqa: F401 - fixtures
from tests.e2e.test_ui import _page, _shot
from tests.factories import PASSWORD, make_project
from tests.jobs.helpers import World
from tests.labs.browser_site.server import LabServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lab_site() -> Iterator[LabServer]:
    with LabServer() as server:
        yield server


def _finished(run_id: int) -> BrowserRun | None:
    try:
        runs.sweep()
        run = BrowserRun.objects.get(pk=run_id)
    except OperationalError:
        return None
    return run if run.status not in runs.UNFINISHED else None


def _sign_in(page: Any, base: str, username: str, next_path: str) -> None:
    # The machine may be busy (other suites, agents, Chromium): generous, bounded waits.
    page.set_default_timeout(30_000)
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def _add_step(page: Any, kind: str, fields: dict[str, str], flags: tuple[str, ...] = ()) -> None:
    page.select_option("#add-kind", kind)  # browser.js submits the choice
    page.locator("#editor").wait_for()
    for name, value in fields.items():
        page.fill(f"#editor [name={name}]", value)
    if flags:
        page.click("#editor .step-flags summary")
        for flag in flags:
            page.check(f"#editor input[name={flag}]")
    page.click("#editor button:has-text('Add step')")
    page.wait_for_load_state("load")


def test_create_a_test_add_steps_run_it_on_an_agent_and_compare(
    live_server: Any,
    browser: Any,
    screenshots: Path,
    agents: Agents,  # noqa: F811
    lab_site: LabServer,
) -> None:
    world = World(cluster_name="default")
    make_project(world.org, slug="shop")
    org = world.org.slug
    base = live_server.url
    problems: list[str] = []
    page = _page(browser, problems)
    _sign_in(page, base, world.owner.username, f"/o/{org}/browser/")
    _shot(page, screenshots, "40-browser-landing")

    # An environment pointing at the lab site.
    page.click("a:has-text('Environments')")
    page.fill("#e-slug", "lab")
    page.fill("#e-name", "Lab")
    page.fill("#e-url", lab_site.url)
    page.fill("#e-vars", "who=Ada")
    page.click("#new-environment button[type=submit]")
    page.wait_for_url("**/environments/lab/")
    _shot(page, screenshots, "41-environment")

    # A new test, then its steps.
    page.goto(f"{base}/o/{org}/browser/")
    page.click("a:has-text('New test')")
    page.fill("#t-name", "Greet")
    page.fill("#t-start", "/form")
    _shot(page, screenshots, "42-test-new")
    page.click("button:has-text('Create and add steps')")
    page.locator("#editor").wait_for()
    _shot(page, screenshots, "43-step-form")
    page.click("#editor a:has-text('Cancel')")
    _add_step(page, "type", {"target": "#name", "value": "{{who}}"})
    _add_step(page, "click", {"target": "#missing-button\n#go"}, flags=("screenshot",))
    _add_step(page, "assert_text", {"value": "Hello, Ada (r)", "target": "#out"})
    _add_step(page, "wait", {"ms": "100"})
    page.locator("#step-4 button:has-text('Disable')").click()
    page.wait_for_load_state("load")
    steps = StoredTest.objects.get(slug="greet").definition["steps"]
    assert [s["action"] for s in steps] == ["type", "click", "assert_text", "wait"]
    assert steps[1]["target"] == ["css=#missing-button", "css=#go"] and steps[3]["disabled"]

    # A bad edit names the step and the field; nothing is saved.
    page.goto(f"{base}/o/{org}/browser/shop/tests/greet/?edit=3#editor")
    page.fill("#editor [name=target]", "role=nonsense")
    page.click("#editor button:has-text('Save step')")
    assert 'step 3 (assert_text): field "target"' in page.locator(".editor-errors").inner_text()
    _shot(page, screenshots, "44-step-error")

    # Run it on a real agent in the lab environment.
    agents.start(world.token)
    page.goto(f"{base}/o/{org}/browser/shop/tests/greet/")
    page.select_option(".run-form select[name=environment]", "lab")
    page.click("button:has-text('Run now')")
    page.wait_for_url("**/runs/*/")
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])
    _shot(page, screenshots, "45-run-queued")
    done = wait_for(lambda: _finished(run_id), timeout=240, step=0.3)
    assert done.status == RunStatus.PASSED, done.results
    page.reload()
    assert page.locator("h1 .badge").inner_text().strip().lower() == "passed"
    _shot(page, screenshots, "46-run-passed")

    # Each step's last result next to it, with the screenshot the click step asked for.
    page.goto(f"{base}/o/{org}/browser/shop/tests/greet/")
    _shot(page, screenshots, "47-test-editor")
    assert page.locator("#step-1 .badge", has_text="passed").is_visible()
    assert page.locator("#step-4 .badge", has_text="skipped").is_visible()
    assert page.locator("#step-2 img.step-thumb").is_visible()

    # Accept the baseline, run again, compare.
    page.goto(f"{base}/o/{org}/browser/shop/runs/{run_id}/")
    page.click("button:has-text('Accept as baseline')")
    page.locator(".flash-success").wait_for()
    assert Baseline.objects.filter(test__slug="greet", environment__slug="lab").count() == 1
    test = StoredTest.objects.get(slug="greet")
    second = runs.start_run(
        world.principal,
        test.project,
        runs.RunRequest(test=test, environment=test.project.browser_environments.get()),
    )
    assert wait_for(lambda: _finished(second.pk), timeout=240, step=0.3).status == "passed"
    page.goto(f"{base}/o/{org}/browser/shop/runs/{second.pk}/")
    assert page.locator("text=matches the baseline").is_visible()
    _shot(page, screenshots, "48-compare-side-by-side")
    page.click("button[data-compare-mode=slider]")
    page.locator(".compare-stack").wait_for()
    page.fill("input[data-compare-range]", "30")
    _shot(page, screenshots, "49-compare-slider")
    page.click("button[data-compare-mode=overlay]")
    _shot(page, screenshots, "50-compare-overlay")

    # As YAML.
    page.goto(f"{base}/o/{org}/browser/shop/tests/greet/yaml/")
    assert "#missing-button" in page.locator("textarea[name=yaml]").input_value()
    _shot(page, screenshots, "51-test-yaml")
    assert problems == []


def test_suite_and_module_pages(live_server: Any, browser: Any, screenshots: Path) -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    org = world.org.slug
    services.save_test(
        world.principal,
        project,
        {"name": "Sign in", "import_only": True, "steps": [{"type": "#user", "value": "ada"}]},
    )
    for name in ("Buy", "Browse", "Search"):
        services.save_test(
            world.principal,
            project,
            {"name": name, "start_url": "/", "steps": [{"module": "sign-in"}, {"log": name}]},
        )
    problems: list[str] = []
    page = _page(browser, problems)
    _sign_in(page, live_server.url, world.owner.username, f"/o/{org}/browser/")

    page.click("a:has-text('New suite')")
    page.fill("#su-slug", "nightly")
    page.fill("#su-name", "Nightly")
    page.check("input[name=tests][value=buy]")
    page.check("input[name=tests][value=search]")
    page.fill("#su-conc", "2")
    _shot(page, screenshots, "52-suite-new")
    page.click("button:has-text('Create suite')")
    page.wait_for_url("**/suites/nightly/")
    page.click("button:has-text('Run suite')")
    page.wait_for_url("**/runs/*/")
    page.locator("button:has-text('Cancel run')").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Cancel run')")
    page.locator(".flash-success").wait_for()
    assert page.locator("h1 .badge").inner_text().strip().lower() == "canceled"
    _shot(page, screenshots, "53-run-canceled")
    page.goto(f"{live_server.url}/o/{org}/browser/shop/suites/nightly/")
    assert "Nightly" in page.locator("h1").inner_text()
    _shot(page, screenshots, "54-suite")

    page.goto(f"{live_server.url}/o/{org}/browser/shop/tests/sign-in/")
    assert page.locator("#users tr", has_text="Browse").is_visible()
    page.click("button:has-text('Re-run these 1')")  # Buy and Search just ran in the suite
    page.locator(".flash-success").wait_for()
    _shot(page, screenshots, "55-module")
    assert problems == []


def test_drag_a_step_onto_another_to_reorder(
    live_server: Any, browser: Any, screenshots: Path
) -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    org = world.org.slug
    services.save_test(
        world.principal,
        project,
        {"name": "Sign in", "import_only": True, "steps": [{"type": "#user", "value": "{{user}}"}]},
    )
    services.save_test(
        world.principal,
        project,
        {
            "name": "Checkout",
            "start_url": "/cart",
            "steps": [
                {"goto": "/cart", "name": "Open the cart"},
                {
                    "module": "sign-in",
                    "params": {"user": "ada", "password": "{{password}}"},
                    "optional": True,
                },
                {
                    "if": "document.querySelector('#coupon') !== null",
                    "steps": [{"type": "#coupon", "value": "SPRING"}, {"click": "#apply"}],
                    "else_steps": [{"log": "no coupon field"}],
                },
                {"click": "#buy", "when": "!document.title.includes('Closed')"},
                {"assert_text": "Thanks", "target": "#out", "match": "contains"},
            ],
        },
    )
    problems: list[str] = []
    page = _page(browser, problems)
    _sign_in(page, live_server.url, world.owner.username, f"/o/{org}/browser/shop/tests/checkout/")
    _shot(page, screenshots, "56-editor-nested-steps")

    # Drag the last top-level step by its number onto the first: it takes the first's place.
    page.drag_and_drop("#step-5 .drag-handle", "#step-1")
    page.wait_for_url("**/tests/checkout/#step-1")
    page.locator("#step-1 .step-title", has_text="assert_text").wait_for()
    steps = StoredTest.objects.get(slug="checkout").definition["steps"]
    assert [s["action"] for s in steps] == ["assert_text", "goto", "module", "if", "click"]
    # Inside a block, onto a step of another list: refused in the browser, nothing posted.
    page.drag_and_drop("#step-4-2 .drag-handle", "#step-4-1")
    page.wait_for_url("**/tests/checkout/#step-4-1")
    page.drag_and_drop("#step-4-1 .drag-handle", "#step-2")
    assert page.locator(".step-list.saving").count() == 0  # set before a move is posted
    block = StoredTest.objects.get(slug="checkout").definition["steps"][3]["steps"]
    assert [s["action"] for s in block] == ["click", "type"]
    assert StoredTest.objects.get(slug="checkout").version == 3
    _shot(page, screenshots, "57-editor-dragged")

    # The module step's form: the module chosen from the project's tests, its parameters.
    page.click("#step-3 a:has-text('Edit')")
    assert page.locator("#editor select[name=module]").input_value() == "sign-in"
    assert "password={{password}}" in page.locator("#editor [name=params]").input_value()
    _shot(page, screenshots, "58-editor-module-step")
    assert problems == []
