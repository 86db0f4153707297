"""Organizations, projects, members, tokens and the audit log over /api/v1/."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from bastion.core.access import Principal, organizations_for

router = Router(tags=["organizations"])


class OrganizationOut(Schema):
    slug: str
    name: str


@router.get("/organizations", response=list[OrganizationOut])
def list_organizations(request: HttpRequest) -> list[OrganizationOut]:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return [OrganizationOut(slug=o.slug, name=o.name) for o in organizations_for(principal)]
