"""Suites and environments of a project's browser tests, and cancelling a run.

Pages under ``/o/<org>/browser/<project>/``: create and edit a suite (tests, concurrency,
variables), its page with its runs and pass rate and a run form (in an environment);
environments (base URL, variables, secrets). Writes go through ``services``/``catalog``/
``vault`` actions; a refused form re-renders with its errors (400), nothing changed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from bastion.browser import catalog, runs, services, vault
from bastion.browser.editor import parse_pairs
from bastion.browser.models import Environment, Suite
from bastion.core.models import Organization, Project, Role
from bastion.web.views._common import org_action, org_page, page, principal_of
from bastion.web.views.browser import _project
from bastion.web.views.browser_editor import _errors, secret_form

SUITE_RUNS = 50


def _pairs_text(values: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in values.items())


def _concurrency(raw: str) -> int:
    if not raw.strip().isdigit():
        raise ValidationError({"concurrency": ["Concurrency must be a whole number."]})
    return int(raw)


def _chosen_tests(request: HttpRequest) -> list[str]:
    return [slug for slug in request.POST.getlist("tests") if slug]


def _test_choices(request: HttpRequest, project: Project, suite: Suite | None) -> list[Any]:
    """Runnable tests, the suite's first in its order."""
    tests = list(services.tests_for(principal_of(request), project).filter(import_only=False)[:500])
    if suite is None:
        return tests
    order = {e.test_id: e.position for e in suite.entries.all()}
    return sorted(tests, key=lambda t: (t.pk not in order, order.get(t.pk, 0), t.slug))


# -- suites ---------------------------------------------------------------------------------
def _suite_form_page(
    request: HttpRequest,
    project: Project,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    status: int = 200,
) -> HttpResponse:
    context = {
        "project": project,
        "values": values,
        "errors": errors,
        "choices": _test_choices(request, project, None),
    }
    return page(request, "browser/suite_new.html", context, section="browser", status=status)


@org_page()
def suite_new(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    found = _project(request, organization, project)
    return _suite_form_page(request, found, {"concurrency": 1, "tests": []}, {})


@org_action(Role.MEMBER)
def suite_create(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    found = _project(request, organization, project)
    post = request.POST
    slug, name = post.get("slug", "").strip(), post.get("name", "").strip()
    tests, concurrency = _chosen_tests(request), post.get("concurrency", "1")
    variables = post.get("variables", "")
    values = {
        "slug": slug,
        "name": name,
        "tests": tests,
        "concurrency": concurrency,
        "variables": variables,
    }
    try:
        suite = services.create_suite(
            principal_of(request),
            found,
            slug=slug,
            name=name,
            tests=tests,
            concurrency=_concurrency(concurrency),
            variables=parse_pairs(variables, "variables"),
        )
    except ValidationError as exc:
        return _suite_form_page(request, found, values, _errors(exc), status=400)
    messages.success(request, f"Suite {suite.name} created.")
    return redirect(
        "web:browser-suite", org=organization.slug, project=found.slug, suite=suite.slug
    )


def _render_suite(
    request: HttpRequest, suite: Suite, errors: dict[str, list[str]], status: int = 200
) -> HttpResponse:
    principal = principal_of(request)
    stats = catalog.suite_stats(principal, suite, SUITE_RUNS)
    entries = [e.test for e in suite.entries.select_related("test")]
    context = {
        "project": suite.project,
        "suite": suite,
        "entries": entries,
        "chosen": {t.slug for t in entries},
        "stats": stats,
        "errors": errors,
        "choices": _test_choices(request, suite.project, suite),
        "variables_text": _pairs_text(suite.variables),
        "environments": list(services.environments_for(principal, suite.project)),
    }
    return page(request, "browser/suite.html", context, section="browser", status=status)


@org_page()
def suite_detail(
    request: HttpRequest, organization: Organization, project: str, suite: str
) -> HttpResponse:
    found = _project(request, organization, project)
    return _render_suite(request, services.get_suite_for(principal_of(request), found, suite), {})


@org_action(Role.MEMBER)
def suite_edit(
    request: HttpRequest, organization: Organization, project: str, suite: str
) -> HttpResponse:
    principal = principal_of(request)
    found = _project(request, organization, project)
    stored = services.get_suite_for(principal, found, suite, Role.MEMBER)
    try:
        catalog.update_suite(
            principal,
            stored,
            name=request.POST.get("name", "").strip(),
            tests=_chosen_tests(request),
            concurrency=_concurrency(request.POST.get("concurrency", "")),
            variables=parse_pairs(request.POST.get("variables", ""), "variables"),
        )
    except ValidationError as exc:
        stored.refresh_from_db()
        return _render_suite(request, stored, _errors(exc), status=400)
    messages.success(request, "Suite saved.")
    return redirect(
        "web:browser-suite", org=organization.slug, project=found.slug, suite=stored.slug
    )


# -- environments ---------------------------------------------------------------------------
@org_page()
def environments(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    found = _project(request, organization, project)
    return _environments_page(request, found, {}, {})


def _environments_page(
    request: HttpRequest,
    project: Project,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status: int = 200,
) -> HttpResponse:
    rows = [
        (env, vault.names(env)) for env in services.environments_for(principal_of(request), project)
    ]
    context = {"project": project, "rows": rows, "values": values, "errors": errors}
    return page(request, "browser/environments.html", context, section="browser", status=status)


@org_action(Role.ADMIN)
def environment_create(
    request: HttpRequest, organization: Organization, project: str
) -> HttpResponse:
    found = _project(request, organization, project)
    values = {k: request.POST.get(k, "").strip() for k in ("slug", "name", "base_url")}
    values["variables"] = request.POST.get("variables", "")
    try:
        environment = services.create_environment(
            principal_of(request),
            found,
            slug=values["slug"],
            name=values["name"],
            base_url=values["base_url"],
            variables=parse_pairs(values["variables"], "variables"),
        )
    except ValidationError as exc:
        return _environments_page(request, found, values, _errors(exc), status=400)
    messages.success(request, f"Environment {environment.name} created.")
    return redirect(
        "web:browser-environment",
        org=organization.slug,
        project=found.slug,
        environment=environment.slug,
    )


def _environment(
    request: HttpRequest, organization: Organization, project: str, slug: str
) -> Environment:
    found = _project(request, organization, project)
    return services.get_environment_for(principal_of(request), found, slug)


def _render_environment(
    request: HttpRequest, environment: Environment, errors: dict[str, list[str]], status: int = 200
) -> HttpResponse:
    recent = list(
        services.runs_for(principal_of(request), environment.project)
        .filter(environment=environment)
        .select_related("test", "suite")[:20]
    )
    context = {
        "project": environment.project,
        "environment": environment,
        "variables_text": _pairs_text(environment.variables),
        "secret_names": vault.names(environment),
        "recent": recent,
        "errors": errors,
    }
    return page(request, "browser/environment.html", context, section="browser", status=status)


@org_page()
def environment_detail(
    request: HttpRequest, organization: Organization, project: str, environment: str
) -> HttpResponse:
    return _render_environment(
        request, _environment(request, organization, project, environment), {}
    )


@org_action(Role.ADMIN)
def environment_edit(
    request: HttpRequest, organization: Organization, project: str, environment: str
) -> HttpResponse:
    found = _environment(request, organization, project, environment)
    try:
        catalog.update_environment(
            principal_of(request),
            found,
            name=request.POST.get("name", "").strip(),
            base_url=request.POST.get("base_url", "").strip(),
            variables=parse_pairs(request.POST.get("variables", ""), "variables"),
        )
    except ValidationError as exc:
        found.refresh_from_db()
        return _render_environment(request, found, _errors(exc), status=400)
    messages.success(request, "Environment saved.")
    return redirect(
        "web:browser-environment", org=organization.slug, project=project, environment=found.slug
    )


@org_action(Role.ADMIN)
def environment_secret(
    request: HttpRequest, organization: Organization, project: str, environment: str
) -> HttpResponse:
    found = _environment(request, organization, project, environment)
    principal = principal_of(request)
    try:
        secret_form(request, principal, found)
    except ValidationError as exc:
        return _render_environment(request, found, _errors(exc), status=400)
    return redirect(
        "web:browser-environment", org=organization.slug, project=project, environment=found.slug
    )


# -- runs -----------------------------------------------------------------------------------
@org_action(Role.MEMBER)
def run_cancel(
    request: HttpRequest, organization: Organization, project: str, run_id: int
) -> HttpResponse:
    found = _project(request, organization, project)
    run = runs.get_run_for(principal_of(request), found, run_id)
    try:
        catalog.cancel_run(principal_of(request), run)
        messages.success(request, f"Run #{run.pk}: cancel requested.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("web:browser-run", org=organization.slug, project=found.slug, run_id=run.pk)
