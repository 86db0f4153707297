"""``bastion pipeline create`` and ``bastion build create``: on the local database, or on a
server through the API when ``BASTION_URL`` and ``BASTION_TOKEN`` are set."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bastion.cli import setup_django
from bastion.cli.remote import Remote, RemoteError

FINISHED = {"passed", "failed", "canceled", "not_run"}
FAILED = {"failed", "canceled"}
WAIT_INTERVAL_S = 0.5
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


def register(sub: Any) -> None:
    pipeline = sub.add_parser("pipeline", help="pipelines (Buildkite-compatible pipeline.yml)")
    pipeline_sub = pipeline.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    create = pipeline_sub.add_parser("create", help="create a pipeline from a pipeline.yml")
    create.add_argument("target", metavar="ORG/SLUG")
    create.add_argument("--file", required=True, type=Path, help="the pipeline.yml to store")
    create.add_argument("--cluster", default="default", help="cluster name (default: default)")
    create.add_argument("--name", default="")
    create.add_argument("--repository", default="")
    create.add_argument("--default-branch", default="main")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=cmd_pipeline_create)

    build = sub.add_parser("build", help="builds of pipelines")
    build_sub = build.add_subparsers(dest="build_command", metavar="ACTION", required=True)
    start = build_sub.add_parser(
        "create", help="start a build (exits 1 when it fails, with --wait)"
    )
    start.add_argument("target", metavar="ORG/SLUG")
    start.add_argument("--branch", default=None, help="default: the pipeline's default branch")
    start.add_argument("--commit", default="HEAD")
    start.add_argument("--message", default="")
    start.add_argument("--env", action="append", default=[], metavar="K=V", help="repeatable")
    start.add_argument("--wait", action="store_true", help="wait for the build to finish")
    start.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most")
    start.add_argument("--json", action="store_true", help="print the build as JSON")
    start.set_defaults(handler=cmd_build_create)


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"bastion: {message}", file=sys.stderr)
    return code


def _split(target: str) -> tuple[str, str] | None:
    org, _, slug = target.partition("/")
    return (org, slug) if org and slug and "/" not in slug else None


def _errors(exc: Exception) -> str:
    from django.core.exceptions import ValidationError

    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' | '.join(v)}" for k, v in exc.message_dict.items())
    return str(exc) or exc.__class__.__name__


def _env(pairs: list[str]) -> dict[str, str] | None:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            return None
        env[key] = value
    return env


# --- pipeline create ------------------------------------------------------------------------------


def cmd_pipeline_create(args: argparse.Namespace) -> int:
    target = _split(args.target)
    if target is None:
        return _fail("give the pipeline as ORG/SLUG", EXIT_USAGE)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.file}: {exc}", EXIT_USAGE)
    body = {
        "slug": target[1],
        "yaml": text,
        "cluster": args.cluster,
        "name": args.name,
        "repository": args.repository,
        "default_branch": args.default_branch,
    }
    remote = Remote.from_env()
    try:
        created = (
            _create_remote(remote, target[0], body) if remote else _create_local(target[0], body)
        )
    except RemoteError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(str(exc))
    for warning in created.get("warnings") or []:
        print(f"bastion: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(created))
    else:
        print(f"Created pipeline {created['organization']}/{created['slug']} "
              f"(cluster {created['cluster']}).")  # fmt: skip
    return 0


def _create_remote(remote: Remote, org: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = remote._json(
        "POST", f"/organizations/{quote(org, safe='')}/pipelines", body
    )
    return result


def _create_local(org: str, body: dict[str, Any]) -> dict[str, Any]:
    setup_django()
    from django.core.exceptions import ValidationError
    from django.http import Http404

    from bastion.core.access import Principal
    from bastion.core.models import Organization
    from bastion.jobs.models import Cluster
    from bastion.pipelines import services
    from bastion.pipelines.schemas import PipelineOut

    organization = Organization.objects.filter(slug=org).first()
    if organization is None:
        raise ValueError(f"no organization {org!r}")
    cluster = Cluster.objects.filter(organization=organization, name=body["cluster"]).first()
    if cluster is None:
        raise ValueError(f"no cluster {body['cluster']!r} in {org}")
    try:
        pipeline = services.create_pipeline(
            Principal.system(organization=organization, what="cli"),
            organization,
            slug=body["slug"],
            yaml=body["yaml"],
            cluster=cluster,
            name=body["name"],
            repository=body["repository"],
            default_branch=body["default_branch"],
        )
    except (ValidationError, Http404) as exc:
        raise ValueError(_errors(exc)) from exc
    out: dict[str, Any] = PipelineOut.of(pipeline).model_dump(mode="json")
    out["warnings"] = list(services.check_yaml(pipeline.yaml).warnings)
    return out


# --- build create -------------------------------------------------------------------------------


def cmd_build_create(args: argparse.Namespace) -> int:
    target = _split(args.target)
    if target is None:
        return _fail("give the pipeline as ORG/SLUG", EXIT_USAGE)
    env = _env(args.env)
    if env is None:
        return _fail("--env takes KEY=VALUE", EXIT_USAGE)
    body: dict[str, Any] = {"commit": args.commit, "message": args.message, "env": env}
    if args.branch:
        body["branch"] = args.branch
    remote = Remote.from_env()
    try:
        if remote is not None:
            build = _start_remote(remote, target, body)
            fetch = _fetch_remote(remote, target, build["number"])
        else:
            build = _start_local(target, body)
            fetch = _fetch_local(build["id"])
        if not args.json:
            print(f"Build #{build['number']} of {args.target} started ({build['state']}).")
        if args.wait:
            build = _wait(fetch, args.timeout)
    except (RemoteError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(build))
    elif args.wait:
        _describe(args.target, build)
    if args.wait and build["state"] not in FINISHED:
        return _fail(f"the build did not finish within {args.timeout:g}s", EXIT_TIMEOUT)
    return EXIT_FAILED if build["state"] in FAILED else 0


def _describe(target: str, build: dict[str, Any]) -> None:
    for step in build["steps"]:
        exits = [j["exit_status"] for j in step["jobs"] if not j["superseded"]]
        suffix = f" (exit {', '.join(str(e) for e in exits)})" if any(exits) else ""
        print(f"  {step['state']:<12} {step['label']}{suffix}")
    print(f"Build #{build['number']} of {target}: {build['state']}")


def _wait(fetch: Callable[[], dict[str, Any]], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + max(0.0, timeout)
    build = fetch()
    for _ in range(int(timeout / WAIT_INTERVAL_S) + 2):
        if build["state"] in FINISHED or time.monotonic() >= deadline:
            break
        time.sleep(WAIT_INTERVAL_S)
        build = fetch()
    return build


def _path(target: tuple[str, str]) -> str:
    return f"/organizations/{quote(target[0], safe='')}/pipelines/{quote(target[1], safe='')}"


def _start_remote(remote: Remote, target: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = remote._json("POST", f"{_path(target)}/builds", body)
    return result


def _fetch_remote(
    remote: Remote, target: tuple[str, str], number: int
) -> Callable[[], dict[str, Any]]:
    def fetch() -> dict[str, Any]:
        result: dict[str, Any] = remote._json("GET", f"{_path(target)}/builds/{number}")
        return result

    return fetch


def _start_local(target: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
    setup_django()
    from django.core.exceptions import ValidationError
    from django.http import Http404

    from bastion.core.access import Principal
    from bastion.core.models import Organization
    from bastion.pipelines import services
    from bastion.pipelines.models import Pipeline
    from bastion.pipelines.schemas import BuildOut

    pipeline = (
        Pipeline.objects.select_related("organization", "cluster")
        .filter(organization__slug=target[0], slug=target[1])
        .first()
    )
    if pipeline is None:
        raise ValueError(f"no pipeline {target[0]}/{target[1]}")
    organization: Organization = pipeline.organization
    try:
        build = services.create_build(
            Principal.system(organization=organization, what="cli"),
            pipeline,
            branch=body.get("branch"),
            commit=body["commit"],
            message=body["message"],
            env=body["env"],
            source="cli",
        )
    except (ValidationError, Http404) as exc:
        raise ValueError(_errors(exc)) from exc
    out: dict[str, Any] = BuildOut.detail(build).model_dump(mode="json")
    return out


def _fetch_local(build_id: int) -> Callable[[], dict[str, Any]]:
    from bastion.pipelines import scheduler
    from bastion.pipelines.models import Build
    from bastion.pipelines.schemas import BuildOut

    def fetch() -> dict[str, Any]:
        scheduler.advance_build(build_id)  # idempotent; no server needed to see progress
        out: dict[str, Any] = BuildOut.detail(
            Build.objects.select_related("pipeline__organization").get(pk=build_id)
        ).model_dump(mode="json")
        return out

    return fetch
