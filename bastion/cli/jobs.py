"""``bastion cluster create`` and ``bastion agent-token create``, on the local database."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from bastion.cli import setup_django


def register(sub: Any) -> None:
    cluster = sub.add_parser("cluster", help="clusters of agents")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    create = cluster_sub.add_parser("create", help="create a cluster (with its default queue)")
    create.add_argument("org", metavar="ORG", help="organization slug")
    create.add_argument("name", metavar="NAME", help="cluster name (a slug)")
    create.add_argument("--description", default="")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=cmd_cluster_create)

    token = sub.add_parser("agent-token", help="agent registration tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    issue = token_sub.add_parser("create", help="create an agent token (printed once)")
    issue.add_argument("--org", required=True, help="organization slug")
    issue.add_argument("--cluster", default="default", help="cluster name (default: default)")
    issue.add_argument("--description", default="")
    issue.add_argument("--expires-in-days", type=int, default=None)
    issue.add_argument("--json", action="store_true", help="print JSON")
    issue.set_defaults(handler=cmd_agent_token_create)


def _fail(message: str) -> int:
    print(f"bastion: {message}", file=sys.stderr)
    return 1


def _errors(exc: Exception) -> str:
    from django.core.exceptions import ValidationError

    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return str(exc)


def cmd_cluster_create(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.exceptions import ValidationError

    from bastion.core import access
    from bastion.core.models import Organization
    from bastion.jobs import services

    organization = Organization.objects.filter(slug=args.org).first()
    if organization is None:
        return _fail(f"no organization {args.org!r}")
    principal = access.Principal.system(organization=organization, what="cli")
    try:
        cluster = services.create_cluster(
            principal, organization, name=args.name, description=args.description
        )
    except ValidationError as exc:
        return _fail(_errors(exc))
    if args.json:
        print(
            json.dumps({"id": cluster.pk, "organization": organization.slug, "name": cluster.name})
        )
    else:
        print(f"Created cluster {organization.slug}/{cluster.name}.")
    return 0


def cmd_agent_token_create(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from bastion.core import access
    from bastion.core.models import Organization
    from bastion.jobs import services
    from bastion.jobs.models import Cluster

    organization = Organization.objects.filter(slug=args.org).first()
    if organization is None:
        return _fail(f"no organization {args.org!r}")
    cluster = Cluster.objects.filter(organization=organization, name=args.cluster).first()
    if cluster is None:
        return _fail(f"no cluster {args.cluster!r} in {organization.slug}")
    if args.expires_in_days is not None and args.expires_in_days < 1:
        return _fail("--expires-in-days must be at least 1")
    expires_at = (
        timezone.now() + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    )
    principal = access.Principal.system(organization=organization, what="cli")
    try:
        issued = services.create_agent_token(
            principal, cluster, description=args.description, expires_at=expires_at
        )
    except ValidationError as exc:
        return _fail(_errors(exc))
    if args.json:
        print(
            json.dumps(
                {
                    "id": issued.token.pk,
                    "organization": organization.slug,
                    "cluster": cluster.name,
                    "prefix": issued.token.prefix,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                    "token": issued.plaintext,
                }
            )
        )
    else:
        print(f"Agent token for {organization.slug}/{cluster.name} (shown once, keep it safe):")
        print(issued.plaintext)
    return 0
