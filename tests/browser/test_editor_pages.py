"""The test editor pages: create a test, add/edit/reorder/duplicate/disable/delete steps,
fallback selectors and flags, errors that name the step and field, YAML, variables, secrets
(never shown back), comparison settings, and a module's users with the one-click re-run."""

from __future__ import annotations

from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from bastion.browser import runs, services, vault
from bastion.browser.models import StoredTest
from bastion.core.models import AuditEvent, Role
from tests.factories import make_member, make_project
from tests.jobs.helpers import World
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db


def _setup() -> tuple[World, Client, str]:
    world = World(cluster_name="default")
    make_project(world.org, slug="shop")
    return world, login_client(world.owner), world.org.slug


def _url(org: str, name: str, **kwargs: object) -> str:
    return reverse(f"web:{name}", kwargs={"org": org, "project": "shop", **kwargs})


def _steps(slug: str = "checkout") -> list[dict[str, object]]:
    return list(StoredTest.objects.get(slug=slug).definition["steps"])


def _edit(client: Client, org: str, data: dict[str, str], slug: str = "checkout") -> object:
    version = str(StoredTest.objects.get(slug=slug).version)
    return client.post(_url(org, "browser-step-edit", test=slug), {"version": version, **data})


def test_create_a_test_and_edit_its_steps() -> None:
    _world, client, org = _setup()
    assert "New browser test" in client.get(_url(org, "browser-test-new")).content.decode()
    refused = client.post(_url(org, "browser-test-create"), {"name": "", "start_url": "/"})
    assert refused.status_code == 400 and not StoredTest.objects.exists()
    created = client.post(
        _url(org, "browser-test-create"), {"name": "Checkout", "start_url": "/form"}
    )
    assert created.status_code == 302 and created["Location"].endswith("?add=click")
    form = client.get(created["Location"]).content.decode()
    assert "New step: Click" in form and 'name="target"' in form

    # Add: a click with two fallback selectors, optional and conditional.
    added = _edit(
        client,
        org,
        {
            "op": "add",
            "action": "click",
            "target": "#buy\ntext=Buy now",
            "optional": "on",
            "when": "document.querySelector('#buy') !== null",
        },
    )
    assert added.status_code == 302
    assert _steps() == [
        {
            "action": "click",
            "target": ["css=#buy", "text=Buy now"],
            "when": "document.querySelector('#buy') !== null",
            "optional": True,
        }
    ]
    _edit(client, org, {"op": "add", "action": "assert_text", "value": "Thanks", "target": "#out"})
    _edit(client, org, {"op": "add", "action": "wait", "ms": "250", "at": "1"})
    assert [s["action"] for s in _steps()] == ["wait", "click", "assert_text"]

    # Reorder, duplicate, disable, edit, delete.
    _edit(client, org, {"op": "move", "index": "1", "direction": "down"})
    assert [s["action"] for s in _steps()] == ["click", "wait", "assert_text"]
    _edit(client, org, {"op": "duplicate", "index": "3"})
    assert [s["action"] for s in _steps()] == ["click", "wait", "assert_text", "assert_text"]
    _edit(client, org, {"op": "toggle", "index": "2"})
    assert _steps()[1].get("disabled") is True
    _edit(client, org, {"op": "toggle", "index": "2"})
    assert "disabled" not in _steps()[1]
    edited = _edit(
        client,
        org,
        {
            "op": "update",
            "index": "4",
            "action": "assert_text",
            "value": "Bye",
            "match": "contains",
        },
    )
    assert edited.status_code == 302
    assert _steps()[3] == {"action": "assert_text", "value": "Bye", "match": "contains"}
    _edit(client, org, {"op": "delete", "index": "2"})
    assert [s["action"] for s in _steps()] == ["click", "assert_text", "assert_text"]

    test = StoredTest.objects.get(slug="checkout")
    assert test.version == 10  # created + 9 edits, each audited with what it did
    edits = AuditEvent.objects.filter(action="browser.test.update").order_by("pk")
    assert [e.changes.get("edit") for e in edits] == [
        "add", "add", "add", "move", "duplicate", "toggle", "toggle", "update", "delete"
    ]  # fmt: skip

    page = unescape(client.get(_url(org, "browser-test", test="checkout")).content.decode())
    assert "2 selectors" in page and "only when" in page and "optional" in page


def test_bad_edits_name_the_step_and_field_and_change_nothing() -> None:
    world, client, org = _setup()
    client.post(_url(org, "browser-test-create"), {"name": "Checkout", "start_url": "/"})
    _edit(client, org, {"op": "add", "action": "click", "target": "#buy"})
    before = StoredTest.objects.get(slug="checkout")

    bad = _edit(
        client, org, {"op": "update", "index": "1", "action": "click", "target": "role=nope"}
    )
    assert bad.status_code == 400
    text = unescape(bad.content.decode())  # type: ignore[attr-defined]
    assert 'step 1 (click): field "target": invalid selector' in text
    assert 'value="role=nope"' in text or "role=nope</textarea>" in text  # the input is kept
    wait = _edit(client, org, {"op": "add", "action": "wait", "ms": "soon"})
    assert 'step 2 (wait): field "ms": must be an integer' in unescape(wait.content.decode())  # type: ignore[attr-defined]
    assert _edit(client, org, {"op": "delete", "index": "7"}).status_code == 400  # type: ignore[attr-defined]
    stale = client.post(
        _url(org, "browser-step-edit", test="checkout"),
        {"version": str(before.version - 1), "op": "delete", "index": "1"},
    )
    assert stale.status_code == 400 and "changed since you opened it" in stale.content.decode()
    after = StoredTest.objects.get(slug="checkout")
    assert (after.version, after.definition) == (before.version, before.definition)

    viewer = login_client(make_member(world.org, Role.VIEWER))
    denied = viewer.post(
        _url(org, "browser-step-edit", test="checkout"), {"op": "delete", "index": "1"}
    )
    assert denied.status_code == 403
    assert StoredTest.objects.get(slug="checkout").definition == before.definition


def test_yaml_settings_and_secrets() -> None:
    _world, client, org = _setup()
    client.post(_url(org, "browser-test-create"), {"name": "Checkout", "start_url": "/"})
    yaml_page = client.get(_url(org, "browser-test-yaml", test="checkout")).content.decode()
    assert "name: Checkout" in yaml_page
    version = StoredTest.objects.get(slug="checkout").version
    bad = client.post(
        _url(org, "browser-test-yaml-save", test="checkout"),
        {"version": version, "yaml": "name: Checkout\nsteps:\n  - click: ''\n"},
    )
    assert bad.status_code == 400
    assert 'step 1 (click): field "target": required' in unescape(bad.content.decode())
    good = client.post(
        _url(org, "browser-test-yaml-save", test="checkout"),
        {
            "version": version,
            "yaml": "name: Checkout\nstart_url: /form\nsteps:\n"
            "  - type: '#name'\n    value: '{{password}}'\n",
        },
    )
    assert good.status_code == 302 and _steps()[0]["action"] == "type"

    settings = client.post(
        _url(org, "browser-test-settings", test="checkout"),
        {
            "version": StoredTest.objects.get(slug="checkout").version,
            "name": "Checkout",
            "start_url": "/form",
            "variables": "user=ada\nplan=pro",
            "tolerance_pct": "2.5",
            "threshold": "0.2",
            "exclude": "#clock\n.ads",
        },
    )
    assert settings.status_code == 302
    definition = StoredTest.objects.get(slug="checkout").definition
    assert definition["variables"] == {"user": "ada", "plan": "pro"}
    assert definition["visual"] == {
        "tolerance_pct": 2.5,
        "threshold": 0.2,
        "exclude": ["css=#clock", "css=.ads"],
    }

    secret = client.post(
        _url(org, "browser-test-secret", test="checkout"),
        {"secret_name": "password", "secret_value": "hunter2-very-secret"},
    )
    assert secret.status_code == 302
    test = StoredTest.objects.get(slug="checkout")
    assert "hunter2" not in test.secrets_encrypted
    assert vault.read(test) == {"password": "hunter2-very-secret"}
    page = client.get(_url(org, "browser-test", test="checkout")).content.decode()
    assert "<code>password</code>" in page and "hunter2" not in page
    row = AuditEvent.objects.filter(action="browser.test.secret").get()
    assert "hunter2" not in str(row.changes) and row.changes["name"] == "password"
    bad_name = client.post(
        _url(org, "browser-test-secret", test="checkout"),
        {"secret_name": "PATH", "secret_value": "x"},
    )
    assert bad_name.status_code == 400
    removed = client.post(_url(org, "browser-test-secret", test="checkout"), {"remove": "password"})
    assert removed.status_code == 302 and vault.names(StoredTest.objects.get(slug="checkout")) == []


def test_module_page_lists_users_and_reruns_the_outdated_ones() -> None:
    world, client, org = _setup()
    project = world.org.projects.get(slug="shop")
    login = {"name": "login", "import_only": True, "steps": [{"log": "sign in"}]}
    services.save_test(world.principal, project, login)
    for name in ("buy", "browse"):
        services.save_test(world.principal, project, {"name": name, "steps": [{"module": "login"}]})
    services.save_test(world.principal, project, {"name": "other", "steps": [{"log": "x"}]})
    runs.start_run(
        world.principal, project, runs.RunRequest(test=StoredTest.objects.get(slug="buy"))
    )
    page = client.get(_url(org, "browser-test", test="login")).content.decode()
    assert "Tests using this module" in page and "buy" in page and "browse" in page
    assert "other</a>" not in page
    assert "Re-run these 1" in page  # browse never ran; buy ran the current version

    services.save_test(world.principal, project, {**login, "steps": [{"log": "sign in v2"}]})
    page = client.get(_url(org, "browser-test", test="login")).content.decode()
    assert "Re-run these 2" in page
    before = runs.BrowserRun.objects.count()
    rerun = client.post(_url(org, "browser-module-rerun", test="login"))
    assert rerun.status_code == 302
    started = runs.BrowserRun.objects.order_by("-pk")[: runs.BrowserRun.objects.count() - before]
    assert sorted(r.test.slug for r in started if r.test) == ["browse", "buy"]
    page = client.get(_url(org, "browser-test", test="login")).content.decode()
    assert "Re-run these" not in page and "current version" in page


@pytest.mark.django_db(transaction=True)
def test_each_step_shows_its_last_result_screenshot_and_the_duration_trend() -> None:
    from tests.browser.test_pages import _finished_run, _png

    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    run = _finished_run(world, project, _png("#3366cc"))
    client = login_client(world.owner)
    page = unescape(
        client.get(_url(world.org.slug, "browser-test", test="checkout")).content.decode()
    )
    files = _url(world.org.slug, "browser-run-files", run_id=run.pk)
    assert 'id="step-2"' in page and "text of #out is 'Sorry', expected 'Thanks'" in page
    assert (
        f'src="{files}?job={run.job_id}&path=artifacts%2F001%2Fscreenshots%2F002-step-2.png"'
        in page
    )
    assert '<svg class="trend"' in page and "failed · 0.94 s" in page


def test_nested_steps_and_module_steps_are_edited_in_the_form() -> None:
    world, client, org = _setup()
    project = world.org.projects.get(slug="shop")
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
            "start_url": "/",
            "steps": [
                {"if": "document.title === 'Shop'", "steps": [{"click": "#a"}, {"click": "#b"}]},
                {"repeat": 2, "steps": [{"log": "again"}]},
            ],
        },
    )
    page = unescape(client.get(_url(org, "browser-test", test="checkout")).content.decode())
    assert 'id="step-1-2"' in page and 'id="step-2-1"' in page
    assert "?in=1#add-step" in page and "?in=1.else#add-step" in page
    form = unescape(
        client.get(_url(org, "browser-test", test="checkout") + "?edit=1.2").content.decode()
    )
    assert "Edit step 1.2: " in form and 'name="index" value="1.2"' in form

    # Edit a nested step, add inside a block and to its else steps: conditional and optional.
    _edit(client, org, {"op": "update", "index": "1.2", "action": "click", "target": "#c"})
    _edit(
        client,
        org,
        {"op": "add", "block": "1", "at": "1", "action": "wait", "ms": "50", "optional": "on"},
    )
    _edit(client, org, {"op": "add", "block": "1.else", "action": "log", "value": "no shop"})
    _edit(
        client,
        org,
        {"op": "update", "index": "2.1", "action": "log", "value": "again", "when": "true"},
    )
    steps = _steps()
    assert steps[0]["steps"] == [
        {"action": "wait", "ms": 50, "optional": True},
        {"action": "click", "target": "css=#a"},
        {"action": "click", "target": "css=#c"},
    ]
    assert steps[0]["else_steps"] == [{"action": "log", "value": "no shop"}]
    assert steps[1]["steps"] == [{"action": "log", "value": "again", "when": "true"}]
    # An empty block from the form, filled one step at a time.
    _edit(client, org, {"op": "add", "action": "while", "script": "false", "steps": ""})
    _edit(client, org, {"op": "add", "block": "3", "action": "log", "value": "in"})
    assert _steps()[2]["steps"] == [{"action": "log", "value": "in"}]
    _edit(client, org, {"op": "delete", "index": "3"})
    add_form = client.get(_url(org, "browser-test", test="checkout") + "?add=click&in=1.else")
    assert "New step in the else steps of step 1: " in unescape(add_form.content.decode())

    # Drag and drop: move to a position, in a block and at the top level.
    moved = _edit(client, org, {"op": "move", "index": "1.3", "to": "1"})
    assert moved["Location"].endswith("#step-1-1")  # type: ignore[index]
    assert [s.get("target") for s in _steps()[0]["steps"]] == ["css=#c", None, "css=#a"]
    _edit(client, org, {"op": "move", "index": "2", "to": "1"})
    assert [s["action"] for s in _steps()] == ["repeat", "if"]
    edits = AuditEvent.objects.filter(action="browser.test.update").order_by("-pk")
    assert edits[0].changes["edit"] == "move" and edits[0].changes["to"] == 1
    assert edits[1].changes["block"] == "1" and edits[1].changes["to"] == 1

    # A module step: the module is chosen from the project's tests, parameters as lines.
    module_form = unescape(
        client.get(_url(org, "browser-test", test="checkout") + "?add=module").content.decode()
    )
    assert '<option value="sign-in">' in module_form
    _edit(
        client,
        org,
        {
            "op": "add",
            "block": "2.else",
            "action": "module",
            "module": "sign-in",
            "params": "user=ada\npassword={{password}}",
        },
    )
    assert _steps()[1]["else_steps"][1] == {
        "action": "module",
        "module": "sign-in",
        "params": {"user": "ada", "password": "{{password}}"},
    }

    # Bad input names the step and the field, next to the field too; nothing changes.
    before = StoredTest.objects.get(slug="checkout")
    bad = _edit(
        client, org, {"op": "update", "index": "2.1", "action": "click", "target": "role=nope"}
    )
    text = unescape(bad.content.decode())  # type: ignore[attr-defined]
    assert bad.status_code == 400  # type: ignore[attr-defined]
    assert 'step 2.1 (click): field "target": invalid selector' in text
    assert '<ul class="field-errors"><li>invalid selector' in text
    params = _edit(
        client,
        org,
        {"op": "update", "index": "2.else.2", "action": "module", "module": "sign-in",
         "params": "user ada"},
    )  # fmt: skip
    assert params.status_code == 400  # type: ignore[attr-defined]
    text = unescape(params.content.decode())  # type: ignore[attr-defined]
    assert 'step 2.else.2 (module): field "params": Write one name=value per line' in text
    missing = _edit(
        client, org, {"op": "update", "index": "2.else.2", "action": "module", "module": "nope"}
    )
    assert 'step 2.else.2 (module): field "module"' in unescape(missing.content.decode())  # type: ignore[attr-defined]
    for data in (
        {"op": "move", "index": "1.9", "to": "1"},
        {"op": "move", "index": "2.1", "to": "7"},
        {"op": "add", "block": "2.1", "action": "log", "value": "x"},  # a click has no steps
        {"op": "add", "block": "1.else", "action": "log", "value": "x"},  # repeat has no else
        {"op": "delete", "index": "9.1"},
    ):
        assert _edit(client, org, data).status_code == 400, data  # type: ignore[attr-defined]
    after = StoredTest.objects.get(slug="checkout")
    assert (after.version, after.definition) == (before.version, before.definition)


def test_nested_rows_show_their_last_result_a_loop_its_last_iteration() -> None:
    from bastion.web.views.browser_editor import _step_rows

    test = StoredTest(
        definition={
            "steps": [
                {"action": "repeat", "times": 2, "steps": [{"action": "log", "value": "x"}]},
                {
                    "action": "if",
                    "script": "true",
                    "steps": [{"action": "log", "value": "y"}],
                    "else_steps": [{"action": "log", "value": "z"}],
                },
            ]
        }
    )
    last = {
        "steps": [
            {"index": "1", "status": "passed"},
            {"index": "1.1.1", "status": "passed", "duration_ms": 1},
            {"index": "1.2.1", "status": "failed", "duration_ms": 2},
            {"index": "2", "status": "passed"},
            {"index": "2.1", "status": "passed", "duration_ms": 3},
        ]
    }
    rows = {row["index"]: row for row in _step_rows(test, last)}
    assert list(rows) == ["1", "1.1", "2", "2.1", "2.else.1"]
    assert rows["1.1"]["last"]["duration_ms"] == 2 and rows["1.1"]["depth"] == 1
    assert rows["2.1"]["last"]["duration_ms"] == 3
    assert rows["2.else.1"]["last"] is None
