"""The front door: pick an organization, create the first one, and the dashboard."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from bastion.core import services
from bastion.core.access import organizations_for, projects_for
from bastion.core.models import Organization
from bastion.jobs.models import ACTIVE_STATES, AgentState
from bastion.jobs.services import agents_for, jobs_for
from bastion.web.audit_query import events_for
from bastion.web.forms import OrganizationForm
from bastion.web.views._common import apply_errors, current_user, org_page, page, principal_of


@login_required
@require_GET
def root(request: HttpRequest) -> HttpResponse:
    first = organizations_for(principal_of(request)).first()
    if first is None:
        return redirect("web:org-create")
    return redirect("web:dashboard", org=first.slug)


@login_required
@require_http_methods(["GET", "POST"])
def org_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        principal = principal_of(request)
        try:
            organization = services.create_organization(
                principal.actor,
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                owner=current_user(request),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Organization {organization.name} created. Welcome!")
            return redirect("web:dashboard", org=organization.slug)
    has_orgs = organizations_for(principal_of(request)).exists()
    status = 400 if request.method == "POST" else 200
    return page(
        request,
        "web/org_create.html",
        {"form": form, "has_orgs": has_orgs},
        section="",
        status=status,
    )


@org_page()
def dashboard(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    jobs = jobs_for(principal, organization)
    agents = agents_for(principal, organization)
    day_ago = timezone.now() - timedelta(days=1)
    context = {
        "project_count": projects_for(principal, organization).count(),
        "agents_online": agents.filter(state__in=[AgentState.IDLE, AgentState.BUSY]).count(),
        "agents_total": agents.count(),
        "jobs_active": jobs.filter(state__in=ACTIVE_STATES).count(),
        "jobs_last_day": jobs.filter(created_at__gte=day_ago).count(),
        "recent_jobs": list(jobs.order_by("-created_at")[:8]),
        "online_agents": list(
            agents.filter(state__in=[AgentState.IDLE, AgentState.BUSY]).order_by("name")[:8]
        ),
        "recent_events": list(events_for(principal, organization).order_by("-seq")[:10]),
        "now": timezone.now(),
    }
    return page(request, "web/dashboard.html", context, section="dashboard")
