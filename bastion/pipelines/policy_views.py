"""The cluster settings page's pipeline policy form (``/o/<org>/settings/clusters/<c>/...``)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from bastion.core.models import Organization, Role
from bastion.jobs.services import get_cluster_for
from bastion.pipelines import policies
from bastion.web.views._common import org_action, principal_of

MAX_TEXT = 20_000


def parse_rules(text: str) -> list[policies.Rule]:
    """One ``pipeline: branch patterns`` per line (``deploy: main release/*``)."""
    rules = []
    for line in text[:MAX_TEXT].splitlines():
        slug, _, branches = line.partition(":")
        if slug.strip():
            rules.append(policies.Rule(slug.strip(), " ".join(branches.split())))
    return rules


def rules_text(view: policies.PolicyView) -> str:
    return "\n".join(f"{r.pipeline}: {r.branches}".rstrip() for r in view.rules)


@org_action(Role.ADMIN)
def update(request: HttpRequest, organization: Organization, cluster: str) -> HttpResponse:
    principal = principal_of(request)
    found = get_cluster_for(principal, organization, cluster, Role.ADMIN)
    try:
        policies.set_policy(
            principal,
            found,
            restricted=request.POST.get("restricted") == "on",
            rules=parse_rules(request.POST.get("rules", "")),
        )
    except ValidationError as exc:
        messages.error(request, "The policy was not changed: " + " ".join(exc.messages))
    else:
        messages.success(request, f"Pipeline policy of {found.name} saved.")
    return redirect("web:cluster", org=organization.slug, cluster=found.name)
