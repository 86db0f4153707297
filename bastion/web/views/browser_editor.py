"""The test editor under ``/o/<org>/browser/<project>/tests/``: create a test, edit its steps one
at a time (add, edit, reorder, duplicate, disable, delete) next to each step's last result,
edit it as YAML, its variables, secrets and screenshot comparison, and for a module the tests
that use it with a one-click re-run of those that ran an older version.

Every write is a POST to a named action in ``bastion.browser.editor``/``vault``/``catalog``;
a refused edit re-renders the page with the errors next to the fields (400), nothing saved.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from bastion.browser import catalog, editor, services, vault
from bastion.browser.history import history_of
from bastion.browser.models import StoredTest
from bastion.browser.spec import ACTIONS, dump_test, load_test
from bastion.browser.step_form import StepFormView, kinds, step_form, summary
from bastion.core.access import Principal
from bastion.core.models import Organization, Role
from bastion.web.views._common import can, org_action, org_page, page, principal_of
from bastion.web.views.browser import _artifact_url, _project

Errors = dict[str, list[str]]


def _errors(exc: ValidationError) -> Errors:
    """Field -> messages; errors not about one field under ``form``."""
    if not hasattr(exc, "error_dict"):
        return {"form": exc.messages}
    return {("form" if k == "__all__" else k): v for k, v in exc.message_dict.items()}


def _version(request: HttpRequest) -> int | None:
    raw = request.POST.get("version", "")
    return int(raw) if raw.isdigit() else None


def _stored(
    request: HttpRequest, organization: Organization, project: str, test: str, minimum: str
) -> tuple[Principal, StoredTest]:
    principal = principal_of(request)
    found = _project(request, organization, project)
    return principal, services.get_test_for(principal, found, test, minimum)


def secret_form(request: HttpRequest, principal: Principal, holder: vault.Holder) -> None:
    """Set (or replace) a secret, or remove one with ``remove=<name>`` (ValidationError when
    refused); values are never shown back."""
    if request.POST.get("remove"):
        vault.remove_secret(principal, holder, request.POST["remove"])
        messages.success(request, "Secret removed.")
        return
    name = request.POST.get("secret_name", "")
    vault.set_secret(principal, holder, name, request.POST.get("secret_value", ""))
    messages.success(request, f"Secret {name} saved. Use it as {{{{{name}}}}}.")


def _test_url(organization: Organization, test: StoredTest, anchor: str = "") -> str:
    url = reverse(
        "web:browser-test",
        kwargs={"org": organization.slug, "project": test.project.slug, "test": test.slug},
    )
    return url + anchor


# -- the test page (the editor) ------------------------------------------------------------
def _step_rows(test: StoredTest, last: dict[str, Any] | None) -> list[dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    if last is not None:
        for step in last.get("steps") or []:
            if isinstance(step, dict) and not step.get("module"):
                results.setdefault(str(step.get("index")), step)
    rows = []
    for number, raw in enumerate(test.definition.get("steps") or [], start=1):
        step = raw if isinstance(raw, dict) else {}
        result = results.get(str(number))
        shot = ""
        if result is not None and last is not None and result.get("screenshot"):
            shot = _artifact_url(last, str(result["screenshot"]))
        rows.append(
            {
                "index": number,
                "action": step.get("action", "?"),
                "step": step,
                "summary": summary(step),
                "fallbacks": isinstance(step.get("target"), list),
                "last": result,
                "shot": shot,
            }
        )
    return rows


def _form_for(request: HttpRequest, test: StoredTest) -> StepFormView | None:
    """``?edit=N`` shows step N's form, ``?add=<kind>`` a new step's."""
    steps = test.definition.get("steps") or []
    edit = request.GET.get("edit", "")
    if edit.isdigit() and 1 <= int(edit) <= len(steps):
        step = steps[int(edit) - 1]
        return step_form(step.get("action", "log"), int(edit), editor.form_initial(step))
    kind = request.GET.get("add", "")
    if kind in ACTIONS:
        at = request.GET.get("at", "")
        return step_form(kind, 0, {"at": at} if at.isdigit() else {})
    return None


def _render_test(
    request: HttpRequest,
    organization: Organization,
    test: StoredTest,
    *,
    form: StepFormView | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> HttpResponse:
    principal = principal_of(request)
    history = history_of(principal, test)
    last = history.entries[0] if history.entries else None
    parsed = load_test(test.definition, default_name=test.slug)
    users = catalog.module_users(principal, test) if test.import_only else []
    context = {
        "project": test.project,
        "test": test,
        "parsed": parsed,
        "history": history,
        "last": last,
        "last_files": (
            reverse(
                "web:browser-run-files",
                kwargs={
                    "org": organization.slug,
                    "project": test.project.slug,
                    "run_id": last.run.pk,
                },
            )
            if last
            else ""
        ),
        "steps": _step_rows(test, last.result if last else None),
        "form": form if form is not None else _form_for(request, test),
        "kinds": kinds(),
        "form_at": request.GET.get("at", "") or request.POST.get("at", ""),
        "errors": errors or {},
        "environments": list(services.environments_for(principal, test.project)),
        "secret_names": vault.names(test),
        "variables_text": "\n".join(f"{k}={v}" for k, v in parsed.variables.items()),
        "exclude_text": "\n".join(str(s) for s in parsed.visual.exclude),
        "users": users,
        "outdated": [u for u in users if u.outdated],
        "can_edit": can(request, Role.MEMBER),
    }
    return page(request, "browser/test.html", context, section="browser", status=status)


@org_page()
def test_detail(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    found = _project(request, organization, project)
    stored = services.get_test_for(principal_of(request), found, test)
    return _render_test(request, organization, stored)


@org_action(Role.MEMBER)
def step_edit(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    """One step operation: ``op`` (add/update/move/duplicate/toggle/delete), ``index``,
    ``version`` (the version the editor showed) and, for add/update, the step's fields."""
    principal, stored = _stored(request, organization, project, test, Role.MEMBER)
    op = request.POST.get("op", "")
    raw_index = request.POST.get("index", "") or request.POST.get("at", "")
    index = int(raw_index) if raw_index.isdigit() else 0
    step: dict[str, Any] = {}
    try:
        if op not in editor.OPS:
            raise ValidationError({"op": [f"Unknown operation {op!r}."]})
        if op in ("add", "update"):
            step = editor.step_from_form(request.POST)
        delta = -1 if request.POST.get("direction") == "up" else 1
        edit = editor.StepEdit(op=op, index=index, step=step, delta=delta)  # type: ignore[arg-type]
        saved = editor.edit_steps(principal, stored, edit, _version(request))
    except ValidationError as exc:
        form = None
        action = request.POST.get("action", "")
        if op in ("add", "update") and action in ACTIONS:
            initial = {
                k: str(request.POST.get(k, "")) for k in request.POST if k != "csrfmiddlewaretoken"
            }
            form = step_form(action, index if op == "update" else 0, initial, _errors(exc))
        return _render_test(
            request, organization, stored, form=form, errors=_errors(exc), status=400
        )
    target = index if op != "add" else len(saved.definition.get("steps") or [])
    if op == "add" and index:
        target = index
    return redirect(_test_url(organization, saved, f"#step-{target}"))


@org_action(Role.MEMBER)
def test_settings(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    """Name, start URL, variables and the screenshot comparison (tolerance, threshold,
    excluded elements)."""
    principal, stored = _stored(request, organization, project, test, Role.MEMBER)
    post = request.POST
    try:
        changes = {
            "name": post.get("name", "").strip(),
            "start_url": post.get("start_url", "").strip(),
            "variables": editor.parse_pairs(post.get("variables", ""), "variables"),
            "visual": {
                "tolerance_pct": _number(post.get("tolerance_pct", ""), "tolerance_pct"),
                "threshold": _number(post.get("threshold", ""), "threshold"),
                "exclude": editor.parse_lines(post.get("exclude", "")),
            },
        }
        editor.update_settings(principal, stored, changes, _version(request))
    except ValidationError as exc:
        return _render_test(request, organization, stored, errors=_errors(exc), status=400)
    messages.success(request, "Test settings saved.")
    return redirect(_test_url(organization, stored))


def _number(raw: str, name: str) -> float:
    try:
        return float(raw.strip())
    except ValueError as exc:
        raise ValidationError({name: [f"{raw!r} is not a number."]}) from exc


@org_action(Role.MEMBER)
def test_secret(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    """Set (or replace) a secret, or remove one with ``remove=<name>``; values never shown."""
    principal, stored = _stored(request, organization, project, test, Role.MEMBER)
    try:
        secret_form(request, principal, stored)
    except ValidationError as exc:
        return _render_test(request, organization, stored, errors=_errors(exc), status=400)
    return redirect(_test_url(organization, stored, "#secrets"))


@org_action(Role.MEMBER)
def test_delete(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    principal, stored = _stored(request, organization, project, test, Role.MEMBER)
    services.delete_test(principal, stored)
    messages.success(request, f"Test {stored.name} deleted.")
    return redirect("web:browser", org=organization.slug)


@org_action(Role.MEMBER)
def module_rerun(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    """One click: run every test whose last run used an older version of this module."""
    principal, module = _stored(request, organization, project, test, Role.MEMBER)
    try:
        started = catalog.rerun_outdated(principal, module)
        messages.success(request, f"Started {len(started)} run{'s' if len(started) != 1 else ''}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(_test_url(organization, module, "#users"))


# -- new test, YAML --------------------------------------------------------------------------
@org_page()
def test_new(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    found = _project(request, organization, project)
    context = {"project": found, "values": {}, "errors": {}}
    return page(request, "browser/test_new.html", context, section="browser")


@org_action(Role.MEMBER)
def test_create(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    principal = principal_of(request)
    found = _project(request, organization, project)
    values = {k: request.POST.get(k, "").strip() for k in ("name", "start_url", "slug")}
    definition: dict[str, Any] = {"name": values["name"], "start_url": values["start_url"]}
    if request.POST.get("import_only"):
        definition["import_only"] = True
    definition["steps"] = []
    try:
        if not values["name"]:
            raise ValidationError({"name": ["A test needs a name."]})
        if values["slug"] and services.tests_for(principal, found).filter(slug=values["slug"]):
            raise ValidationError({"slug": ["A test with that slug already exists here."]})
        stored = services.save_test(principal, found, definition, slug=values["slug"])
    except ValidationError as exc:
        context = {"project": found, "values": values, "errors": _errors(exc)}
        return page(request, "browser/test_new.html", context, section="browser", status=400)
    messages.success(request, "Test created: add its first step.")
    return redirect(_test_url(organization, stored) + "?add=click")


@org_page()
def test_yaml(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    found = _project(request, organization, project)
    stored = services.get_test_for(principal_of(request), found, test)
    text = dump_test(load_test(stored.definition, default_name=stored.slug))
    context = {"project": found, "test": stored, "text": text, "errors": {}}
    return page(request, "browser/test_yaml.html", context, section="browser")


@org_action(Role.MEMBER)
def test_yaml_save(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    principal, stored = _stored(request, organization, project, test, Role.MEMBER)
    text = request.POST.get("yaml", "")
    try:
        editor.save_yaml(principal, stored, text, _version(request))
    except ValidationError as exc:
        context = {"project": stored.project, "test": stored, "text": text, "errors": _errors(exc)}
        return page(request, "browser/test_yaml.html", context, section="browser", status=400)
    messages.success(request, "Test saved.")
    return redirect(_test_url(organization, stored))
