"""Pipelines: the module landing page. YAML pipelines run by your agents: builds, steps and deploy gates. Lives here until the pipelines app takes it over."""

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
    return page(request, "web/modules/pipelines.html", context, section="pipelines")
