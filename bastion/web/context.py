"""Template context shared by every page: the navigation, the current organization, the role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from bastion.core.access import Principal, organizations_for
from bastion.core.models import Role, User, role_at_least

NAVIGATION = [
    ("dashboard", "Dashboard", "home"),
    ("scanning", "Scanning", "radar"),
    ("browser", "Browser tests", "browser"),
    ("pipelines", "Pipelines", "flow"),
    ("errors", "Errors", "bug"),
    ("agents", "Agents", "cpu"),
    ("audit", "Audit log", "scroll"),
    ("settings", "Settings", "gear"),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    context: dict[str, Any] = {"navigation": NAVIGATION}
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return context
    organizations = list(organizations_for(Principal.of_user(user)))
    current = getattr(request, "bastion_org", None)
    nav_org = current or (organizations[0] if organizations else None)
    role = getattr(request, "bastion_role", None) if current is not None else None
    context.update(
        user_orgs=organizations,
        current_org=current,
        nav_org=nav_org,
        current_role=role,
        is_admin=role is not None and role_at_least(role, Role.ADMIN),
        is_member=role is not None and role_at_least(role, Role.MEMBER),
    )
    return context
