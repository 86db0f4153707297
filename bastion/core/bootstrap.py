"""First start on a fresh machine: the first admin, a default organization and cluster, and
the registration token of the local agent that `bastion up` runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from bastion.core import services
from bastion.core.access import Principal
from bastion.core.context import Actor
from bastion.core.models import Organization, Role, User
from bastion.core.tokens import hash_token

DEFAULT_ORG = "default"
ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class FirstAdmin:
    username: str
    password: str


def ensure_first_admin() -> FirstAdmin | None:
    """Create the first admin and the default organization when the database has no user.

    Returns the generated credentials exactly once (on the run that created them).
    """
    if User.objects.exists():
        return None
    actor = Actor.system("bootstrap")
    with transaction.atomic():
        user, password = services.create_user(
            actor,
            username=ADMIN_USERNAME,
            email=f"{ADMIN_USERNAME}@{settings.CONFIG.mail_domain}",
            is_superuser=True,
        )
        services.create_organization(actor, name="Default", slug=DEFAULT_ORG, owner=user)
    assert password is not None
    return FirstAdmin(username=user.username, password=password)


def _token_file() -> Path:
    return Path(settings.DATA_DIR) / "local-agent.token"


def local_agent_token() -> str | None:
    """The registration token of the local agent, created (and kept in var/, mode 0600) if needed.

    None when there is no default organization (an operator removed or renamed it).
    """
    from bastion.jobs.models import AgentToken, Cluster
    from bastion.jobs.services import DEFAULT_CLUSTER, create_agent_token, create_cluster

    path = _token_file()
    if path.exists():
        plaintext = path.read_text().strip()
        token = AgentToken.objects.filter(token_hash=hash_token(plaintext)).first()
        if token is not None and token.is_active:
            return plaintext
    organization = Organization.objects.filter(slug=DEFAULT_ORG).first()
    if organization is None:
        return None
    owner = (
        organization.memberships.filter(role=Role.OWNER)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if owner is None:
        return None
    principal = Principal(actor=Actor.system("bootstrap"), user=owner.user)
    cluster = Cluster.objects.filter(organization=organization, name=DEFAULT_CLUSTER).first()
    if cluster is None:
        cluster = create_cluster(principal, organization, name=DEFAULT_CLUSTER)
    issued = create_agent_token(principal, cluster, description="local agent of bastion up")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(issued.plaintext)
    return issued.plaintext
