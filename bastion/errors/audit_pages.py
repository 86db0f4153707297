"""Web pages of the errors module for auditors and admins: review coverage (page, CSV, JSON)
and ignore rules (list with what each suppressed and when it last matched, create, disable).

Thin views: reads through ``bastion.errors.access``, changes through the audited actions.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from bastion.core.access import get_project_for
from bastion.core.models import Organization, Role
from bastion.errors import access, actions, alert_pages, coverage, coverage_pdf, services
from bastion.errors.models import RuleKind
from bastion.web.views._common import can, org_action, org_page, page, principal_of

SUPPRESSED_SHOWN = 50


@org_page()
def review_coverage(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    period = coverage.parse_period(request.GET.get("from", ""), request.GET.get("to", ""))
    report = coverage.review_coverage(found, period)
    export = request.GET.get("format", "")
    name = f"review-coverage-{organization.slug}-{found.slug}-{period.start}-{period.end}"
    if export == "csv":
        response = HttpResponse(coverage.as_csv(report), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    if export == "json":
        response = HttpResponse(
            json.dumps(coverage.as_json(report), indent=2), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response
    if export == "pdf":
        response = HttpResponse(
            coverage_pdf.render(report, principal.actor.label), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        return response
    context: dict[str, Any] = {
        "project": found,
        "report": report,
        "period": period,
        "can_change": can(request, Role.ADMIN),
        "digest": actions.digest_of(organization),
        "digest_form": alert_pages.digest_form(organization),
    }
    return page(request, "errors/review_coverage.html", context, section="errors")


@org_page()
def ignore_rules(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    context: dict[str, Any] = {
        "project": found,
        "rules": access.ignore_rules_for(principal, found),
        "kinds": RuleKind.choices,
        "can_change": can(request, Role.ADMIN),
    }
    return page(request, "errors/ignore_rules.html", context, section="errors")


@org_page()
def ignore_rule(
    request: HttpRequest, organization: Organization, project: str, rule_id: int
) -> HttpResponse:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    rule = access.get_ignore_rule_for(principal, found, rule_id)
    context: dict[str, Any] = {
        "project": found,
        "rule": rule,
        "events": access.suppressed_events_for(principal, rule)[:SUPPRESSED_SHOWN],
        "can_change": can(request, Role.ADMIN),
    }
    return page(request, "errors/ignore_rule.html", context, section="errors")


@org_action(minimum=Role.ADMIN)
def ignore_rule_create(
    request: HttpRequest, organization: Organization, project: str
) -> HttpResponseBase:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project, minimum=Role.ADMIN)
    try:
        services.create_ignore_rule(
            principal,
            found,
            kind=request.POST.get("kind", ""),
            value=request.POST.get("value", ""),
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Ignore rule added.")
    return redirect("errors:ignore-rules", org=organization.slug, project=project)


@org_action(minimum=Role.ADMIN)
def ignore_rule_enabled(
    request: HttpRequest, organization: Organization, project: str, rule_id: int
) -> HttpResponseBase:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project, minimum=Role.ADMIN)
    rule = access.get_ignore_rule_for(principal, found, rule_id)
    enabled = request.POST.get("enabled") == "1"
    services.set_ignore_rule_enabled(principal, rule, enabled)
    messages.success(request, f"Rule {'enabled' if enabled else 'disabled'}.")
    return redirect("errors:ignore-rules", org=organization.slug, project=project)
