"""``{% cluster_secrets %}``: the Secrets card of the cluster settings page (never values)."""

from __future__ import annotations

from typing import Any

from django import template

from bastion.core.access import Principal
from bastion.pipelines import cluster_secrets as secrets

register = template.Library()


@register.inclusion_tag("pipelines/_cluster_secrets.html", takes_context=True)
def cluster_secrets(context: Any) -> dict[str, Any]:
    request = context["request"]
    cluster = context["cluster"]
    return {
        "secrets": secrets.secrets_of(Principal.of_user(request.user), cluster),
        "cluster": cluster,
        "current_org": context["current_org"],
        "is_admin": context.get("is_admin", False),
        "csrf_token": context.get("csrf_token"),
    }
