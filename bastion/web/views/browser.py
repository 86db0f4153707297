"""Browser-test pages under ``/o/<org>/browser/``: the tests of every project with their last
result and pass rate, a test with its steps and history, a run with per-step results,
screenshots, video and the baseline comparison with its one-click accept."""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from PIL import Image, UnidentifiedImageError

from bastion.browser import runs, services
from bastion.browser.history import history_of
from bastion.browser.models import Baseline, BrowserRun, StoredTest
from bastion.browser.spec import load_test
from bastion.core.access import get_project_for, projects_for
from bastion.core.models import Organization, Project, Role
from bastion.jobs.models import Artifact
from bastion.jobs.services import agents_for
from bastion.web.views._common import org_action, org_page, page, principal_of

RUNS_PAGE = 30


def _project(request: HttpRequest, organization: Organization, slug: str) -> Project:
    return get_project_for(principal_of(request), organization.slug, slug)


@org_page()
def landing(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    projects = []
    for project in projects_for(principal, organization).order_by("slug")[:100]:
        tests = [
            (test, history_of(principal, test, limit=10))
            for test in services.tests_for(principal, project).order_by("import_only", "slug")[:200]
        ]
        recent = list(services.runs_for(principal, project).select_related("test", "suite")[:10])
        suites = list(services.suites_for(principal, project).prefetch_related("entries"))
        environments = list(services.environments_for(principal, project))
        projects.append((project, tests, recent, suites, environments))
    context = {
        "projects": projects,
        "has_projects": projects_for(principal, organization).exists(),
        "has_agents": agents_for(principal, organization).exists(),
    }
    return page(request, "browser/index.html", context, section="browser")


@org_action(Role.MEMBER)
def run_start(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    """Run a test (``test``) or a suite (``suite``), in an ``environment`` if one is chosen."""
    principal = principal_of(request)
    found = _project(request, organization, project)
    test, suite, env = (request.POST.get(k, "").strip() for k in ("test", "suite", "environment"))
    try:
        run = runs.start_run(
            principal,
            found,
            runs.RunRequest(
                test=services.get_test_for(principal, found, test, Role.MEMBER) if test else None,
                suite=services.get_suite_for(principal, found, suite, Role.MEMBER)
                if suite
                else None,
                environment=services.get_environment_for(principal, found, env) if env else None,
            ),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        if test:
            return redirect(
                "web:browser-test", org=organization.slug, project=found.slug, test=test
            )
        return redirect("web:browser", org=organization.slug)
    return redirect("web:browser-run", org=organization.slug, project=found.slug, run_id=run.pk)


@dataclass
class ResultView:
    position: int
    data: dict[str, Any]
    test: StoredTest | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    baseline: Baseline | None = None
    diff: Any = None
    final_url: str = ""
    video_url: str = ""


def _artifact_url(data: dict[str, Any], relative: str) -> str:
    if not relative:
        return ""
    path = f"{data.get('artifact_dir', '')}{relative}"
    return "?" + urlencode({"job": str(data.get("job", "")), "path": path})


def _final_png(run: BrowserRun, data: dict[str, Any]) -> bytes | None:
    shot = str(data.get("final_screenshot") or "")
    if not shot:
        return None
    artifact = Artifact.objects.filter(
        job_id=int(data.get("job") or 0),
        job__origin=runs.origin_of(run),
        path=f"{data.get('artifact_dir', '')}{shot}",
    ).first()
    if artifact is None:
        return None
    with artifact.file.open("rb") as handle:
        content: bytes = handle.read()
    return content


def _baseline_for(run: BrowserRun, test: StoredTest, png: bytes | None) -> Baseline | None:
    """The baseline of test x the run's environment x the screenshot's size (viewport)."""
    if png is None:
        return None
    try:
        with Image.open(io.BytesIO(png)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError):
        return None
    return Baseline.objects.filter(
        test=test,
        environment=run.environment,
        name="final",
        viewport_width=width,
        viewport_height=height,
    ).first()


def _results(run: BrowserRun) -> list[ResultView]:
    tests = {t.slug: t for t in StoredTest.objects.filter(project=run.project)}
    views = []
    for position, data in enumerate(run.results):
        test = tests.get(str(data.get("slug")))
        steps = [
            {**step, "shot_url": _artifact_url(data, str(step.get("screenshot") or ""))}
            for step in data.get("steps") or []
            if isinstance(step, dict)
        ]
        view = ResultView(position, data, test, steps)
        view.final_url = _artifact_url(data, str(data.get("final_screenshot") or ""))
        view.video_url = _artifact_url(data, str(data.get("video") or ""))
        if test is not None and view.final_url:
            png = _final_png(run, data)
            view.baseline = _baseline_for(run, test, png)
            if view.baseline is not None and png is not None:
                visual = load_test(test.definition, default_name=test.slug).visual
                try:
                    view.diff = services.compare_with_baseline(
                        view.baseline,
                        png,
                        tolerance_pct=visual.tolerance_pct,
                        threshold=visual.threshold,
                    )
                except (OSError, ValueError):
                    view.diff = None
        views.append(view)
    return views


def _run(request: HttpRequest, organization: Organization, project: str, run_id: int) -> BrowserRun:
    found = _project(request, organization, project)
    return runs.get_run_for(principal_of(request), found, run_id)


@org_page()
def run_detail(
    request: HttpRequest, organization: Organization, project: str, run_id: int
) -> HttpResponse:
    run = _run(request, organization, project, run_id)
    context = {
        "project": run.project,
        "run": run,
        "jobs": runs.run_jobs(run),
        "results": _results(run),
    }
    return page(request, "browser/run.html", context, section="browser")


@org_page()
def run_files(
    request: HttpRequest, organization: Organization, project: str, run_id: int
) -> HttpResponseBase:
    """The files of the run; one of them with ``?job=&path=``, a baseline with ``?baseline=``."""
    run = _run(request, organization, project, run_id)
    if not request.GET:
        files = Artifact.objects.filter(job__origin=runs.origin_of(run)).order_by("job_id", "path")
        context = {"project": run.project, "run": run, "files": list(files[:1000])}
        return page(request, "browser/files.html", context, section="browser")
    position = request.GET.get("diff", "")
    if position:
        return _diff(run, position)
    baseline_id = request.GET.get("baseline", "")
    if baseline_id:
        if not baseline_id.isdigit():
            raise Http404("No such file.")
        baseline = Baseline.objects.filter(pk=int(baseline_id), test__project=run.project).first()
        if baseline is None:
            raise Http404("No such file.")
        return FileResponse(default_storage.open(baseline.image, "rb"), content_type="image/png")
    job = request.GET.get("job", "")
    artifact = (
        Artifact.objects.filter(
            job_id=int(job), job__origin=runs.origin_of(run), path=request.GET.get("path", "")
        ).first()
        if job.isdigit()
        else None
    )
    if artifact is None:
        raise Http404("No such file.")
    kind = mimetypes.guess_type(artifact.path)[0] or "application/octet-stream"
    if not kind.startswith(("image/", "video/")):
        kind = "application/octet-stream"
    response = FileResponse(artifact.file.open("rb"), content_type=kind)
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _diff(run: BrowserRun, position: str) -> HttpResponse:
    """The diff image of result ``position``'s final screenshot against its baseline."""
    if not position.isdigit() or int(position) >= len(run.results):
        raise Http404("No such result.")
    data = run.results[int(position)]
    test = StoredTest.objects.filter(project=run.project, slug=str(data.get("slug"))).first()
    png = _final_png(run, data) if test is not None else None
    baseline = _baseline_for(run, test, png) if test is not None else None
    if test is None or baseline is None or png is None:
        raise Http404("Nothing to compare.")
    threshold = load_test(test.definition, default_name=test.slug).visual.threshold
    return HttpResponse(
        services.diff_image(baseline, png, threshold=threshold), content_type="image/png"
    )


@org_action(Role.MEMBER)
def accept_baseline(
    request: HttpRequest, organization: Organization, project: str, run_id: int
) -> HttpResponse:
    """One click: the run's final screenshot of a test becomes its baseline (audited)."""
    run = _run(request, organization, project, run_id)
    position = request.POST.get("result", "")
    if not position.isdigit() or int(position) >= len(run.results):
        raise Http404("No such result.")
    data = run.results[int(position)]
    principal = principal_of(request)
    test = services.get_test_for(principal, run.project, str(data.get("slug")), Role.MEMBER)
    png = _final_png(run, data)
    if png is None:
        messages.error(request, "This result has no final screenshot.")
    else:
        try:
            services.accept_baseline(principal, test, png, environment=run.environment, run=run)
            messages.success(request, f"New baseline accepted for {test.name}.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return redirect("web:browser-run", org=organization.slug, project=project, run_id=run.pk)
