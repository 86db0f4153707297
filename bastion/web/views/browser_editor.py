"""The test editor under ``/o/<org>/browser/<project>/tests/``: create a test, edit its steps one
at a time (add, edit, reorder, duplicate, disable, delete) next to each step's last result,
edit it as YAML, its variables, secrets and screenshot comparison, and for a module the tests
that use it with a one-click re-run of those that ran an older version.

Every write is a POST to a named action in ``bastion.browser.editor``/``vault``/``catalog``;
a refused edit re-renders the page with the errors next to the fields (400), nothing saved.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
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
from bastion.browser.spec.model import BLOCK_ACTIONS
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
MAX_ROWS = 1000


@dataclass(frozen=True)
class _Where:
    """A list of steps in the test: its path (``""``, ``"3"``, ``"3.else"``), the prefix of
    its steps' result indexes in the last run (None: none ran), whether that run numbered them
    per iteration (``<key>.<iteration>.<n>``), and how deep it is nested."""

    block: str
    result_key: str | None
    loop: bool
    depth: int


def _step_rows(test: StoredTest, last: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every step of the test, nested ones after their block step (``depth``), each with its
    path and its result in the last run (in a loop: its last iteration's)."""
    results: dict[str, dict[str, Any]] = {}
    if last is not None:
        for step in last.get("steps") or []:
            if isinstance(step, dict) and not step.get("module"):
                results.setdefault(str(step.get("index")), step)
    rows: list[dict[str, Any]] = []
    _add_rows(rows, test.definition.get("steps") or [], _Where("", "", False, 0), results, last)
    return rows


def _result_key(results: Mapping[str, Any], where: _Where, number: int) -> str | None:
    if where.result_key is None:
        return None
    prefix = f"{where.result_key}." if where.result_key else ""
    if not where.loop:
        return f"{prefix}{number}"
    iterations = []
    for key in results:
        iteration, _, rest = key[len(prefix) :].partition(".")
        if key.startswith(prefix) and iteration.isdigit() and rest == str(number):
            iterations.append(int(iteration))
    return f"{prefix}{max(iterations)}.{number}" if iterations else None


def _add_rows(
    rows: list[dict[str, Any]],
    steps: list[Any],
    where: _Where,
    results: dict[str, dict[str, Any]],
    last: dict[str, Any] | None,
) -> None:
    for number, raw in enumerate(steps, start=1):
        if len(rows) >= MAX_ROWS:
            return
        step = raw if isinstance(raw, dict) else {}
        path = f"{where.block}.{number}" if where.block else str(number)
        key = _result_key(results, where, number)
        result = results.get(key) if key is not None else None
        shot = ""
        if result is not None and last is not None and result.get("screenshot"):
            shot = _artifact_url(last, str(result["screenshot"]))
        action = step.get("action", "?")
        rows.append(
            {
                "index": path,
                "number": number,
                "block": where.block,
                "anchor": "step-" + path.replace(".", "-"),
                "depth": min(where.depth, 4),
                "first": number == 1,
                "last_in_block": number == len(steps),
                "is_block": action in BLOCK_ACTIONS,
                "action": action,
                "step": step,
                "summary": summary(step),
                "fallbacks": isinstance(step.get("target"), list),
                "last": result,
                "shot": shot,
            }
        )
        if action in BLOCK_ACTIONS:
            inner = _Where(path, key, action != "if", where.depth + 1)
            _add_rows(rows, step.get("steps") or [], inner, results, last)
            if action == "if":
                else_key = None if key is None else f"{key}.else"
                otherwise = _Where(f"{path}.else", else_key, False, where.depth + 1)
                _add_rows(rows, step.get("else_steps") or [], otherwise, results, last)


def _block_of(test: StoredTest, block: str) -> list[Any] | None:
    """The steps of ``block`` (``""``: the top level); None if the test has no such block."""
    try:
        return editor.steps_list(copy.deepcopy(test.definition), block)
    except ValidationError:
        return None


def _find_step(test: StoredTest, path: str) -> dict[str, Any] | None:
    block, number = editor.split_path(path)
    steps = _block_of(test, block) if number else None
    found = steps[number - 1] if steps is not None and number <= len(steps) else None
    return found if isinstance(found, dict) else None


def _modules(principal: Principal, test: StoredTest) -> tuple[str, ...]:
    """The tests this one may import: the project's others, modules first."""
    others = services.tests_for(principal, test.project).exclude(pk=test.pk)
    slugs = others.order_by("-import_only", "slug").values_list("slug", flat=True)
    return tuple(slugs[:MAX_ROWS])


def _form_for(request: HttpRequest, test: StoredTest) -> StepFormView | None:
    """``?edit=<path>`` shows that step's form, ``?add=<kind>`` a new step's (``&in=<block>``:
    inside a block step)."""
    modules = _modules(principal_of(request), test)
    step = _find_step(test, request.GET.get("edit", ""))
    if step is not None:
        initial = editor.form_initial(step)
        path = request.GET["edit"].strip()
        return step_form(step.get("action", "log"), path, initial, modules=modules)
    kind = request.GET.get("add", "")
    block = request.GET.get("in", "")
    if kind in ACTIONS and _block_of(test, block) is not None:
        at = request.GET.get("at", "")
        initial = {"at": at} if at.isdigit() else {}
        return step_form(kind, "", initial, modules=modules, block=block)
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
    add_in = request.GET.get("in", "")
    add_in = add_in if add_in and _block_of(test, add_in) is not None else ""
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
        "add_in": add_in,
        "add_count": len(_block_of(test, add_in) or []),
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


def _step_from_form(post: Mapping[str, str], where: str) -> dict[str, Any]:
    """The step from the form; a field the form cannot read is refused naming the step too."""
    try:
        return editor.step_from_form(post)
    except ValidationError as exc:
        errors = _errors(exc)
        kind = f"{where} ({post.get('action', '')})"
        named = [
            f'{kind}: field "{name}": {message}' for name, ms in errors.items() for message in ms
        ]
        raise ValidationError({**errors, "definition": named}) from exc


@org_action(Role.MEMBER)
def step_edit(
    request: HttpRequest, organization: Organization, project: str, test: str
) -> HttpResponse:
    """One step operation: ``op`` (add/update/move/duplicate/toggle/delete), ``index`` (the
    step's path: ``3``, ``3.1``, ``3.else.2``), ``version`` (the version the editor showed);
    for add, ``block`` (the list it goes in) and ``at``; for add/update, the step's fields;
    for move, ``to`` (drag and drop) or ``direction`` (up/down)."""
    principal, stored = _stored(request, organization, project, test, Role.MEMBER)
    post = request.POST
    op = post.get("op", "")
    if op == "add":
        block, raw_at = post.get("block", "").strip(), post.get("at", "") or post.get("index", "")
        index = int(raw_at) if raw_at.isdigit() else 0
    else:
        block, index = editor.split_path(post.get("index", ""))
    to = int(post["to"]) if post.get("to", "").isdigit() else 0
    step: dict[str, Any] = {}
    try:
        if op not in editor.OPS:
            raise ValidationError({"op": [f"Unknown operation {op!r}."]})
        if op in ("add", "update"):
            where = f"step {editor.join_path(block, index)}" if op == "update" or index else ""
            step = _step_from_form(post, where or "the new step")
        delta = -1 if post.get("direction") == "up" else 1
        edit = editor.StepEdit(op, index, step, delta, block, to)  # type: ignore[arg-type]
        saved = editor.edit_steps(principal, stored, edit, _version(request))
    except ValidationError as exc:
        form = None
        action = post.get("action", "")
        if op in ("add", "update") and action in ACTIONS:
            initial = {k: str(post.get(k, "")) for k in post if k != "csrfmiddlewaretoken"}
            path = editor.join_path(block, index) if op == "update" else ""
            modules = _modules(principal, stored)
            form = step_form(action, path, initial, _errors(exc), modules=modules, block=block)
        return _render_test(
            request, organization, stored, form=form, errors=_errors(exc), status=400
        )
    count = len(editor.steps_list(copy.deepcopy(saved.definition), block))
    if op == "add":
        index = index or count
    elif op == "move":
        index = to or max(1, min(count, index + delta))
    moved = editor.join_path(block, min(index, count)) if count else ""
    anchor = "#step-" + moved.replace(".", "-") if moved else ""
    return redirect(_test_url(organization, saved, anchor))


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
