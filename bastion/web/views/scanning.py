"""Scanning: the module landing page. Lightning and deep scans of your web apps and APIs, with findings, triage and reports. Lives here until the scanning app takes it over."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from bastion.core.access import projects_for
from bastion.core.models import Organization
from bastion.jobs.services import agents_for
from bastion.web.views._common import org_page, page, principal_of


@org_page()
def landing(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    context = {
        "has_projects": projects_for(principal, organization).exists(),
        "has_agents": agents_for(principal, organization).exists(),
    }
    return page(request, "web/modules/scanning.html", context, section="scanning")
