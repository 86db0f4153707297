"""``bastion pipeline schedule add|list ORG/SLUG``: a pipeline's scheduled builds, on the local
database or, with ``BASTION_URL`` and ``BASTION_TOKEN``, on a server through the API."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from bastion.cli import setup_django
from bastion.cli.pipeline_common import EXIT_USAGE, _env, _errors, _fail, _split
from bastion.cli.remote import Remote, RemoteError


def register(pipeline_sub: Any) -> None:
    schedule = pipeline_sub.add_parser("schedule", help="scheduled builds of a pipeline (cron)")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="build the pipeline on a cron schedule")
    add.add_argument("target", metavar="ORG/SLUG")
    add.add_argument("--cron", required=True, help='five fields, e.g. "0 2 * * *"')
    add.add_argument("--timezone", default="UTC", help="an IANA time zone, e.g. Europe/Lisbon")
    add.add_argument("--branch", default="", help="default: the pipeline's default branch")
    add.add_argument("--commit", default="HEAD")
    add.add_argument("--message", default="")
    add.add_argument("--label", default="")
    add.add_argument("--env", action="append", default=[], metavar="K=V", help="repeatable")
    add.add_argument("--disabled", action="store_true", help="create it paused")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(handler=cmd_schedule_add)
    listing = actions.add_parser("list", help="the pipeline's schedules and their next runs")
    listing.add_argument("target", metavar="ORG/SLUG")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_schedule_list)


def _path(org: str, slug: str) -> str:
    return f"/organizations/{quote(org, safe='')}/pipelines/{quote(slug, safe='')}/schedules"


def cmd_schedule_add(args: argparse.Namespace) -> int:
    target = _split(args.target)
    env = _env(args.env)
    if target is None or env is None:
        return _fail("give the pipeline as ORG/SLUG and variables as K=V", EXIT_USAGE)
    body = {
        "cron": args.cron,
        "timezone": args.timezone,
        "branch": args.branch,
        "commit": args.commit,
        "message": args.message,
        "label": args.label,
        "env": env,
        "enabled": not args.disabled,
    }
    remote = Remote.from_env()
    try:
        row = remote._json("POST", _path(*target), body) if remote else _local(target, body)
    except (RemoteError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(row))
    else:
        upcoming = ", ".join(row["next_runs"]) or "paused"
        print(f"Schedule {row['id']} of {args.target}: {row['cron']} {row['timezone']}; "
              f"next: {upcoming}")  # fmt: skip
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    target = _split(args.target)
    if target is None:
        return _fail("give the pipeline as ORG/SLUG", EXIT_USAGE)
    remote = Remote.from_env()
    try:
        rows = remote._json("GET", _path(*target)) if remote else _local(target, None)
    except (RemoteError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        state = "enabled" if row["enabled"] else "paused"
        nxt = row["next_runs"][0] if row["next_runs"] else "-"
        print(f"{row['id']:>5}  {row['cron']:<16} {row['timezone']:<18} {row['branch']:<20} "
              f"{state:<8} next {nxt}")  # fmt: skip
    return 0


def _local(target: tuple[str, str], body: dict[str, Any] | None) -> Any:
    """Create (with ``body``) or list the schedules on the local database, as the CLI."""
    setup_django()
    from django.core.exceptions import ValidationError
    from pydantic import ValidationError as SchemaError

    from bastion.core.access import Principal
    from bastion.pipelines import scheduling
    from bastion.pipelines.models import Pipeline
    from bastion.pipelines.schedule_api import BuildScheduleIn, BuildScheduleOut

    pipeline = (
        Pipeline.objects.select_related("organization")
        .filter(organization__slug=target[0], slug=target[1])
        .first()
    )
    if pipeline is None:
        raise ValueError(f"no pipeline {target[0]}/{target[1]}")
    principal = Principal.system(organization=pipeline.organization, what="cli")
    if body is None:
        rows = scheduling.schedules_of(principal, pipeline)
        return [BuildScheduleOut.of(row).model_dump(mode="json") for row in rows]
    try:
        spec = BuildScheduleIn(**body).spec()
    except SchemaError as exc:
        raise ValueError("; ".join(str(e["msg"]) for e in exc.errors())) from exc
    try:
        row = scheduling.create_build_schedule(principal, pipeline, spec)
    except ValidationError as exc:
        raise ValueError(_errors(exc)) from exc
    return BuildScheduleOut.of(row).model_dump(mode="json")
