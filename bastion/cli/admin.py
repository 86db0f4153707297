"""Administration commands: users, organizations, projects, API tokens and the audit log.

Locally they act on the database directly (like Django's ``createsuperuser``), audited as the
system actor ``cli``. With ``BASTION_URL`` and ``BASTION_TOKEN`` set, the org-scoped commands
(``project create``, ``token create``, ``audit export``) act on that server through its API.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from rich.console import Console

from bastion.cli import setup_django
from bastion.cli.remote import Remote, RemoteError

ROLES = ("owner", "admin", "member", "viewer")
out = Console(highlight=False, soft_wrap=True)


def register(sub: Any) -> None:
    user = sub.add_parser("createuser", help="create a user (prints a generated password once)")
    user.add_argument("username", metavar="USERNAME")
    user.add_argument("--email", required=True)
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user.add_argument("--superuser", action="store_true", help="a Django superuser (staff)")
    user.add_argument("--json", action="store_true", help="print JSON")
    user.set_defaults(handler=cmd_createuser)

    org = sub.add_parser("org", help="organizations")
    org_sub = org.add_subparsers(dest="org_command", metavar="ACTION", required=True)
    org_create = org_sub.add_parser("create", help="create an organization")
    org_create.add_argument("slug", metavar="SLUG")
    org_create.add_argument("--name", default="")
    org_create.add_argument("--owner", metavar="USERNAME", help="the user who becomes its owner")
    org_create.add_argument("--json", action="store_true", help="print JSON")
    org_create.set_defaults(handler=cmd_org_create)

    project = sub.add_parser("project", help="projects")
    project_sub = project.add_subparsers(dest="project_command", metavar="ACTION", required=True)
    project_create = project_sub.add_parser("create", help="create a project (remote-capable)")
    project_create.add_argument("path", metavar="ORG/SLUG")
    project_create.add_argument("--name", default="")
    project_create.add_argument("--json", action="store_true", help="print JSON")
    project_create.set_defaults(handler=cmd_project_create)

    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    token_create = token_sub.add_parser("create", help="create an API token (printed once)")
    token_create.add_argument("--org", required=True, help="organization slug")
    token_create.add_argument("--role", required=True, choices=ROLES)
    token_create.add_argument("--name", required=True)
    token_create.add_argument("--expires-in-days", type=int, default=None, metavar="D")
    token_create.add_argument("--json", action="store_true", help="print JSON")
    token_create.set_defaults(handler=cmd_token_create)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain (exit 1 when broken)")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(handler=cmd_audit_verify)
    export = audit_sub.add_parser("export", help="write the audit log to standard output")
    export.add_argument("--org", help="only this organization (required against a server)")
    export.add_argument("--format", choices=("csv", "json"), default="json")
    export.set_defaults(handler=cmd_audit_export)


# --- helpers -------------------------------------------------------------------------------


def _fail(message: str) -> int:
    print(f"bastion: {message}", file=sys.stderr)
    return 1


def _describe(exc: Exception) -> str:
    from django.core.exceptions import ValidationError

    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        return " ".join(exc.messages)
    return str(exc) or exc.__class__.__name__


def _emit(data: dict[str, Any]) -> None:
    print(json.dumps(data, sort_keys=True, default=str))


def _expires_at(days: int | None) -> Any:
    from django.utils import timezone

    return timezone.now() + timedelta(days=days) if days else None


# --- users and organizations (always local) ------------------------------------------------


def cmd_createuser(args: argparse.Namespace) -> int:
    password: str | None = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            return _fail("no password on standard input")
    setup_django()
    from django.core.exceptions import ValidationError

    from bastion.core import services
    from bastion.core.context import Actor

    try:
        user, generated = services.create_user(
            Actor.system("cli"),
            username=args.username,
            email=args.email,
            password=password,
            is_superuser=args.superuser,
        )
    except ValidationError as exc:
        return _fail(_describe(exc))
    if args.json:
        _emit(
            {
                "id": user.pk,
                "username": user.username,
                "email": user.email,
                "superuser": user.is_superuser,
                "password": generated,
            }
        )
    else:
        out.print(f"Created user [bold]{user.username}[/] <{user.email}>.")
        if generated:
            out.print("Password (shown once, keep it safe):")
            print(generated)
    return 0


def cmd_org_create(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.exceptions import ValidationError

    from bastion.core import services
    from bastion.core.context import Actor
    from bastion.core.models import User

    owner = None
    if args.owner:
        owner = User.objects.filter(username=args.owner).first()
        if owner is None:
            return _fail(f"no user {args.owner!r}")
    try:
        organization = services.create_organization(
            Actor.system("cli"), name=args.name, slug=args.slug, owner=owner
        )
    except ValidationError as exc:
        return _fail(_describe(exc))
    if args.json:
        _emit(
            {
                "id": organization.pk,
                "slug": organization.slug,
                "name": organization.name,
                "owner": owner.username if owner else None,
            }
        )
    else:
        who = f", owned by {owner.username}" if owner else ""
        out.print(f"Created organization [bold]{organization.slug}[/] ({organization.name}){who}.")
    return 0


# --- projects and tokens (local or remote) -------------------------------------------------


def cmd_project_create(args: argparse.Namespace) -> int:
    org, sep, slug = args.path.partition("/")
    if not sep or not org or not slug or "/" in slug:
        return _fail("expected ORG/SLUG, e.g. acme/web")
    remote = Remote.from_env()
    if remote is not None:
        try:
            data = remote.create_project(org, slug, args.name)
        except RemoteError as exc:
            return _fail(str(exc))
    else:
        setup_django()
        from django.core.exceptions import ValidationError
        from django.http import Http404

        from bastion.core import access, services
        from bastion.core.access import Principal

        principal = Principal.system("cli")
        try:
            organization = access.get_organization_for(principal, org)
            project = services.create_project(principal, organization, slug=slug, name=args.name)
        except Http404:
            return _fail(f"no organization {org!r}")
        except ValidationError as exc:
            return _fail(_describe(exc))
        data = {"organization": org, "slug": project.slug, "name": project.name}
    if args.json:
        _emit(data)
    else:
        out.print(f"Created project [bold]{data['organization']}/{data['slug']}[/].")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    if args.expires_in_days is not None and args.expires_in_days < 1:
        return _fail("--expires-in-days must be at least 1")
    remote = Remote.from_env()
    if remote is not None:
        from datetime import UTC, datetime

        expires = (
            (datetime.now(UTC) + timedelta(days=args.expires_in_days)).isoformat()
            if args.expires_in_days
            else None
        )
        try:
            data = remote.create_token(args.org, name=args.name, role=args.role, expires_at=expires)
        except RemoteError as exc:
            return _fail(str(exc))
        data = {
            key: data.get(key) for key in ("id", "name", "role", "prefix", "expires_at", "token")
        }
    else:
        setup_django()
        from django.core.exceptions import ValidationError
        from django.http import Http404

        from bastion.core import access, services
        from bastion.core.access import Principal

        principal = Principal.system("cli")
        try:
            organization = access.get_organization_for(principal, args.org)
            issued = services.create_api_token(
                principal,
                organization,
                name=args.name,
                role=args.role,
                expires_at=_expires_at(args.expires_in_days),
            )
        except Http404:
            return _fail(f"no organization {args.org!r}")
        except ValidationError as exc:
            return _fail(_describe(exc))
        token = issued.token
        data = {
            "id": token.pk,
            "name": token.name,
            "role": token.role,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "token": issued.plaintext,
        }
    data["organization"] = args.org
    if args.json:
        _emit(data)
    else:
        out.print(
            f"API token [bold]{data['name']}[/] for {args.org} as {data['role']} "
            "(shown once, keep it safe):"
        )
        print(data["token"])
    return 0


# --- the audit log -------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    setup_django()
    from bastion.core import audit

    report = audit.verify_chain()
    if args.json:
        _emit(
            {
                "ok": report.ok,
                "checked": report.checked,
                "first_bad_seq": report.first_bad_seq,
                "problem": report.problem,
            }
        )
    elif report.ok:
        out.print(f"[green]Audit chain intact[/]: {report.checked} rows checked.")
    else:
        Console(stderr=True, highlight=False).print(
            f"[red]Audit chain broken[/] at row seq={report.first_bad_seq}: {report.problem} "
            f"({report.checked} rows before it are intact)."
        )
    return 0 if report.ok else 1


def cmd_audit_export(args: argparse.Namespace) -> int:
    remote = Remote.from_env()
    stream = sys.stdout.buffer
    if remote is not None:
        if not args.org:
            return _fail("--org is required when exporting from a server")
        try:
            for chunk in remote.export_audit(args.org, args.format):
                stream.write(chunk)
        except RemoteError as exc:
            return _fail(str(exc))
        stream.flush()
        return 0
    setup_django()
    from django.http import Http404

    from bastion.core import access
    from bastion.core.audit_export import iter_csv, iter_json
    from bastion.core.models import AuditEvent

    principal = access.Principal.system("cli")
    events = AuditEvent.objects.order_by("seq")
    if args.org:
        try:
            organization = access.get_organization_for(principal, args.org)
        except Http404:
            return _fail(f"no organization {args.org!r}")
        events = events.filter(organization=organization)
    rows = iter_csv(events) if args.format == "csv" else iter_json(events)
    for text in rows:
        stream.write(text.encode())
    stream.flush()
    return 0
