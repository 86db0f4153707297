"""A run's results as JUnit XML over /api/v1/ (for CI systems that read JUnit). Mounted inside
the browser router; the run is fetched through the scoped ``runs.get_run_for``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from bastion.browser import runs
from bastion.browser.junit import junit_filename, run_junit
from bastion.core.access import Principal, get_project_for

router = Router(tags=["browser"])
XML = {"application/xml": {"schema": {"type": "string"}}}


def junit_response(run: runs.BrowserRun) -> HttpResponse:
    response = HttpResponse(run_junit(run), content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{junit_filename(run)}"'
    return response


@router.get(
    "/organizations/{org}/projects/{project}/browser/runs/{run_id}/junit",
    openapi_extra={"responses": {200: {"description": "JUnit XML", "content": XML}}},
)
def run_junit_xml(request: HttpRequest, org: str, project: str, run_id: int) -> HttpResponse:
    """One <testsuite> per test of the run, one <testcase> per step (empty while it runs)."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    found = get_project_for(principal, org, project)
    return junit_response(runs.get_run_for(principal, found, run_id))
