"""The cluster settings page's Secrets section: add, replace and delete cluster secrets."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from bastion.core.models import Organization, Role
from bastion.jobs.services import get_cluster_for
from bastion.pipelines import cluster_secrets
from bastion.pipelines.policy_views import parse_rules
from bastion.web.views._common import org_action, principal_of


@org_action(Role.ADMIN)
def save(request: HttpRequest, organization: Organization, cluster: str) -> HttpResponse:
    """Create a secret, or replace the value (and description, rules) of an existing one."""
    principal = principal_of(request)
    found = get_cluster_for(principal, organization, cluster, Role.ADMIN)
    key = request.POST.get("key", "").strip()[:100]
    value = request.POST.get("value", "")
    description = request.POST.get("description", "")[:500]
    rules = parse_rules(request.POST.get("rules", ""))
    try:
        if found.secrets.filter(key=key).exists():
            cluster_secrets.update_secret(
                principal, found, key, value=value, description=description, rules=rules
            )
        else:
            cluster_secrets.create_secret(
                principal, found, key=key, value=value, description=description, rules=rules
            )
    except ValidationError as exc:
        messages.error(request, "The secret was not saved: " + " ".join(exc.messages))
    else:
        messages.success(request, f"Secret {key} saved.")
    return redirect("web:cluster", org=organization.slug, cluster=found.name)


@org_action(Role.ADMIN)
def delete(
    request: HttpRequest, organization: Organization, cluster: str, key: str
) -> HttpResponse:
    principal = principal_of(request)
    found = get_cluster_for(principal, organization, cluster, Role.ADMIN)
    cluster_secrets.delete_secret(principal, found, key)
    messages.success(request, f"Secret {key} deleted.")
    return redirect("web:cluster", org=organization.slug, cluster=found.name)
