"""``bastion project dsn ORG/PROJECT`` and ``bastion errors issues ORG/PROJECT``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bastion.cli import setup_django


def _subcommands(sub: Any, name: str, help_text: str) -> Any:
    """The sub-command group ``name``: the one another module registered, or a new one."""
    existing = sub.choices.get(name)
    if existing is not None:
        for action in existing._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
    parser = sub.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def register(sub: Any) -> None:
    project_sub = _subcommands(sub, "project", "projects")
    dsn = project_sub.add_parser("dsn", help="print the project's DSN (creates a key if none)")
    dsn.add_argument("target", metavar="ORG/PROJECT")
    dsn.set_defaults(handler=cmd_project_dsn)

    errors = sub.add_parser("errors", help="error tracking: issues")
    errors_sub = errors.add_subparsers(dest="errors_command", metavar="ACTION", required=True)
    issues = errors_sub.add_parser("issues", help="list a project's issues with their counts")
    issues.add_argument("target", metavar="ORG/PROJECT")
    issues.add_argument("--status", choices=["unresolved", "resolved", "ignored"], default=None)
    issues.add_argument("--query", default="", help="text in the title or culprit")
    issues.add_argument("--limit", type=int, default=100)
    issues.add_argument("--json", action="store_true", help="print JSON")
    issues.set_defaults(handler=cmd_errors_issues)


def _fail(message: str) -> int:
    print(f"bastion: {message}", file=sys.stderr)
    return 1


def _split(target: str) -> tuple[str, str] | None:
    org, sep, project = target.partition("/")
    return (org, project) if sep and org and project else None


def cmd_project_dsn(args: argparse.Namespace) -> int:
    setup_django()
    from django.http import Http404

    from bastion.core.access import Principal, get_project_for
    from bastion.errors.services import default_dsn_key, dsn_of

    target = _split(args.target)
    if target is None:
        return _fail("give the project as ORG/PROJECT")
    principal = Principal.system("cli")
    try:
        project = get_project_for(principal, *target)
    except Http404:
        return _fail(f"no project {args.target!r}")
    print(dsn_of(default_dsn_key(principal, project)))
    return 0


def cmd_errors_issues(args: argparse.Namespace) -> int:
    setup_django()
    from django.http import Http404

    from bastion.core.access import Principal
    from bastion.errors.access import issues_for
    from bastion.errors.schemas import IssueOut

    target = _split(args.target)
    if target is None:
        return _fail("give the project as ORG/PROJECT")
    try:
        issues = issues_for(Principal.system("cli"), *target, status=args.status, query=args.query)
    except Http404:
        return _fail(f"no project {args.target!r}")
    rows = [IssueOut.of(issue) for issue in issues[: max(args.limit, 1)]]
    if args.json:
        print(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
        return 0
    for row in rows:
        print(
            f"{row.id:>6}  {row.status:<10}  {row.event_count:>7} events  "
            f"{row.users_affected:>5} users  {row.title}"
        )
    if not rows:
        print("no issues")
    return 0
