"""``{% cluster_policy %}``: the pipeline policy card of the cluster settings page."""

from __future__ import annotations

from typing import Any

from django import template

from bastion.core.access import Principal
from bastion.pipelines import policies
from bastion.pipelines.policy_views import rules_text

register = template.Library()


@register.inclusion_tag("pipelines/_cluster_policy.html", takes_context=True)
def cluster_policy(context: Any) -> dict[str, Any]:
    request = context["request"]
    cluster = context["cluster"]
    view = policies.policy_of(Principal.of_user(request.user), cluster)
    return {
        "policy": view,
        "rules_text": rules_text(view),
        "cluster": cluster,
        "current_org": context["current_org"],
        "is_admin": context.get("is_admin", False),
        "csrf_token": context.get("csrf_token"),
    }
