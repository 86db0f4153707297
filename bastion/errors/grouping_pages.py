"""The fingerprint-rules page of a project: the rules as text (syntax help beside them), what
each parsed rule matches and assigns, and saving them through the audited action."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from bastion.core.access import get_project_for
from bastion.core.models import Organization, Project, Role
from bastion.errors import access, fingerprinting, services
from bastion.web.views._common import can, org_action, org_page, page, principal_of

EXAMPLE = """# Tried in order; the first rule whose matchers all hold sets the fingerprint.
error.type:DatabaseError -> database-down
error.type:TimeoutError message:"*upstream*" -> upstream-timeout, {{ default }}
tags.tenant:acme -> acme, {{ type }}"""


def _render(
    request: HttpRequest, project: Project, text: str, error: str = "", status: int = 200
) -> HttpResponse:
    try:
        parsed = fingerprinting.parse(text) if not error else ()
    except ValueError:
        parsed = ()
    context: dict[str, Any] = {
        "project": project,
        "text": text,
        "parsed": parsed,
        "error": error,
        "example": EXAMPLE,
        "can_change": can(request, Role.ADMIN),
    }
    return page(request, "errors/fingerprint_rules.html", context, section="errors", status=status)


@org_page()
def fingerprint_rules(
    request: HttpRequest, organization: Organization, project: str
) -> HttpResponse:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project)
    return _render(request, found, access.fingerprint_rules_for(principal, found))


@org_action(minimum=Role.ADMIN)
def fingerprint_rules_save(
    request: HttpRequest, organization: Organization, project: str
) -> HttpResponseBase:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project, minimum=Role.ADMIN)
    text = request.POST.get("rules", "")[: fingerprinting.MAX_TEXT + 1]
    try:
        services.set_fingerprint_rules(principal, found, text)
    except ValidationError as exc:
        return _render(request, found, text, " ".join(exc.messages), status=400)
    messages.success(request, "Fingerprint rules saved; they group events received from now on.")
    return redirect("errors:fingerprint-rules", org=organization.slug, project=project)
