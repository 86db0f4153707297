"""Sign in, walk every page of the navigation, and do the everyday admin tasks in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from bastion.core.models import ApiToken, Invitation, Project
from bastion.jobs.models import AgentState, JobLogChunk, JobState
from tests.factories import PASSWORD, make_member, make_org, make_user
from tests.web.conftest import make_agent, make_cluster, make_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NAVIGATION = [
    ("Dashboard", "dashboard"),
    ("Scanning", "scanning"),
    ("Browser tests", "browser"),
    ("Pipelines", "pipelines"),
    ("Errors", "errors"),
    ("Agents", "agents"),
    ("Audit log", "audit"),
    ("Settings", "settings"),
]


def _page(browser: Any, problems: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)

    # CSP violations and script errors show up as console errors: the UI must have none.
    # (Pages answering 4xx on purpose, e.g. a form with errors, log "Failed to load resource";
    # static files are checked by their own responses instead.)
    def on_console(msg: Any) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(msg.text)

    def on_response(response: Any) -> None:
        if "/static/" in response.url and response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return page


def _shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_sign_in_and_visit_every_page(live_server: Any, browser: Any, screenshots: Path) -> None:
    owner = make_user("ada")
    org = make_org(owner, slug="acme")
    make_member(org, username="grace")
    cluster = make_cluster(org)
    make_agent(cluster, "build-1", AgentState.BUSY)
    make_agent(cluster, "build-2", AgentState.IDLE)
    job = make_job(cluster, JobState.RUNNING, "deploy staging", log="$ make deploy\nok\n")
    make_job(cluster, JobState.PASSED, "unit tests")
    problems: list[str] = []
    page = _page(browser, problems)

    page.goto(f"{live_server.url}/o/acme/")
    assert "/login/" in page.url
    _shot(page, screenshots, "00-login")
    page.fill("input[name=username]", "ada@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/acme/")

    for index, (label, key) in enumerate(NAVIGATION, start=1):
        page.click(f"nav.nav a:has-text('{label}')")
        page.wait_for_load_state("load")
        assert page.locator(".nav-item.active").inner_text().strip() == label
        assert page.locator("h1").first.is_visible()
        _shot(page, screenshots, f"{index:02d}-{key}")

    # The organization switcher and the user menu open and close.
    page.click(".org-switcher summary")
    assert page.locator(".org-switcher .menu-link", has_text="Acme").is_visible()
    _shot(page, screenshots, "08b-org-switcher")
    page.keyboard.press("Escape")
    page.click(".user-menu summary")
    assert page.locator(".user-menu button", has_text="Sign out").is_visible()
    _shot(page, screenshots, "08c-user-menu")
    page.keyboard.press("Escape")

    page.goto(f"{live_server.url}/o/acme/agents/")
    page.locator(f"a[href$='/jobs/{job.pk}/']").first.click()
    page.wait_for_url(f"**/jobs/{job.pk}/")
    assert "make deploy" in page.locator("pre.log").inner_text()
    _shot(page, screenshots, "09-job")
    page.goto(f"{live_server.url}/account/")
    _shot(page, screenshots, "10-account")
    page.goto(f"{live_server.url}/o/acme/settings/members/")
    _shot(page, screenshots, "11-members")
    page.goto(f"{live_server.url}/o/acme/settings/clusters/default/")
    _shot(page, screenshots, "12-cluster")
    assert problems == []
    page.goto(f"{live_server.url}/o/acme/no-such-page/")
    assert page.locator(".error-code").inner_text() == "404"
    _shot(page, screenshots, "13-not-found")


def test_create_project_token_and_invite(live_server: Any, browser: Any, screenshots: Path) -> None:
    owner = make_user("linus")
    org = make_org(owner, slug="initech")
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "linus")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/initech/")

    # A project: a bad slug first shows the error next to the field, then a good one.
    page.goto(f"{live_server.url}/o/initech/settings/")
    page.fill("#new-project input[name=name]", "Web shop")
    page.fill("input[name=slug]", "Web Shop!")
    page.click("#new-project button[type=submit]")
    assert page.locator(".has-error .field-errors").first.is_visible()
    _shot(page, screenshots, "20-project-error")
    page.fill("input[name=slug]", "web-shop")
    page.click("#new-project button[type=submit]")
    page.wait_for_url("**/o/initech/settings/")
    assert page.locator(".flash-success").is_visible()
    assert Project.objects.filter(organization=org, slug="web-shop").exists()
    _shot(page, screenshots, "21-project-created")

    # An API token: its secret is shown once, then only its prefix.
    page.goto(f"{live_server.url}/o/initech/settings/tokens/")
    page.fill("input[name=name]", "deploy pipeline")
    page.select_option("#new-token select[name=role]", "member")
    page.click("#new-token button[type=submit]")
    secret = page.locator("#secret-value").inner_text().strip()
    assert secret.startswith("bstapi_")
    token = ApiToken.objects.get(organization=org, name="deploy pipeline")
    assert secret.startswith(token.prefix)
    _shot(page, screenshots, "22-token-once")
    page.goto(f"{live_server.url}/o/initech/settings/tokens/")
    assert secret not in page.content()
    assert token.prefix in page.content()
    _shot(page, screenshots, "23-tokens")

    # An invitation: mailed, listed as pending.
    page.goto(f"{live_server.url}/o/initech/settings/members/")
    page.fill("input[name=email]", "newbie@example.test")
    page.select_option("#invite select[name=role]", "viewer")
    page.click("#invite button[type=submit]")
    page.wait_for_url("**/settings/members/")
    assert page.locator("text=newbie@example.test").first.is_visible()
    invitation = Invitation.objects.get(organization=org, email="newbie@example.test")
    assert invitation.role == "viewer"
    assert any("newbie@example.test" in m.to for m in mail.outbox)
    _shot(page, screenshots, "24-invited")
    assert problems == []


def test_agents_page_updates_live_and_a_job_can_be_canceled(
    live_server: Any, browser: Any, screenshots: Path
) -> None:
    owner = make_user("grace")
    org = make_org(owner, slug="navy")
    cluster = make_cluster(org)
    agent = make_agent(cluster, "cobol-1", AgentState.IDLE)
    job = make_job(cluster, JobState.RUNNING, "compile", log="line 1\n")
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto(f"{live_server.url}/login/?next=/o/navy/agents/")
    page.fill("input[name=username]", "grace")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/o/navy/agents/")
    row = page.locator("tr", has_text="cobol-1")
    assert row.locator(".badge").inner_text() == "Idle"

    # The agent picks up the job: htmx polling shows it without a reload.
    agent.state = AgentState.BUSY
    agent.current_job = job
    agent.save()
    row.locator(".badge", has_text="Busy").wait_for(timeout=10_000)
    assert row.locator(f"a[href$='/jobs/{job.pk}/']").is_visible()
    _shot(page, screenshots, "30-agents-live")

    # The job log grows while the job runs.
    page.goto(f"{live_server.url}/o/navy/jobs/{job.pk}/")
    JobLogChunk.objects.create(job=job, seq=1, data="line 2\n")
    page.locator("pre.log", has_text="line 2").wait_for(timeout=10_000)

    # Cancel asks for confirmation, then records the request.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Cancel job')")
    page.locator(".flash-success").wait_for()
    job.refresh_from_db()
    assert job.cancel_requested_at is not None
    _shot(page, screenshots, "31-job-cancel-requested")
    assert problems == []
