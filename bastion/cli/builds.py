"""``bastion build create``: start a build (local database or a server's API) and follow it."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from bastion.cli import setup_django
from bastion.cli.pipeline_common import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    FAILED,
    FINISHED,
    WAIT_INTERVAL_S,
    _env,
    _errors,
    _fail,
    _split,
)
from bastion.cli.remote import Remote, RemoteError

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
            source="api",  # Buildkite's sources: the CLI is an API client (remote, it is one)
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
