"""A run's JUnit XML from the run page (``/o/<org>/browser/<project>/runs/<id>/junit.xml``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bastion.browser import runs
from bastion.browser.results_api import junit_response
from bastion.core.access import get_project_for
from bastion.core.models import Organization
from bastion.web.views._common import org_page, principal_of


@org_page()
def run_junit(
    request: HttpRequest, organization: Organization, project: str, run_id: int
) -> HttpResponse:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    return junit_response(runs.get_run_for(principal, found, run_id))


patterns = [
    path("browser/<slug:project>/runs/<int:run_id>/junit.xml", run_junit, name="browser-run-junit"),
]
