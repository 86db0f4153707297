"""``bastion pipeline create|keygen|webhook-secret`` and the parsers of every pipeline command:
on the local database, or on a server through the API when ``BASTION_URL`` and ``BASTION_TOKEN``
are set. ``build create`` lives in ``bastion.cli.builds``, the in-job commands in
``bastion.cli.jobside``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bastion.cli import builds, jobside, pipeline_schedules, setup_django
from bastion.cli.pipeline_common import EXIT_USAGE, _errors, _fail, _signed, _split
from bastion.cli.remote import Remote, RemoteError
from bastion.pipelines.repository import UPLOAD_YAML


def register(sub: Any) -> None:
    pipeline = sub.add_parser("pipeline", help="pipelines (Buildkite-compatible pipeline.yml)")
    pipeline_sub = pipeline.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)
    create = pipeline_sub.add_parser("create", help="create a pipeline from a pipeline.yml")
    create.add_argument("target", metavar="ORG/SLUG")
    create.add_argument(
        "--file",
        type=Path,
        default=None,
        help="the pipeline.yml to store (default with --repository: one step that uploads "
        ".bastion/pipeline.yml or .buildkite/pipeline.yml from the checkout)",
    )
    create.add_argument("--cluster", default="default", help="cluster name (default: default)")
    create.add_argument("--name", default="")
    create.add_argument("--repository", default="")
    create.add_argument("--default-branch", default="main")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.add_argument(
        "--signing-key", type=Path, default=None, help="sign the command steps (PEM, Ed25519)"
    )
    create.set_defaults(handler=cmd_pipeline_create)
    keygen = pipeline_sub.add_parser(
        "keygen", help="make a cluster signing key pair (signing-key.pem, verification-key.pem)"
    )
    keygen.add_argument("directory", type=Path)
    keygen.set_defaults(handler=cmd_pipeline_keygen)
    hook = pipeline_sub.add_parser(
        "webhook-secret", help="make a new GitHub/GitLab webhook secret (printed once)"
    )
    hook.add_argument("target", metavar="ORG/SLUG")
    hook.set_defaults(handler=cmd_pipeline_webhook_secret)
    upload = pipeline_sub.add_parser(
        "upload", help="(inside a job) add steps to the running build (dynamic pipelines)"
    )
    upload.add_argument(
        "file", nargs="?", default=None, help="'-' for stdin; default .bastion/ or .buildkite/"
    )
    upload.add_argument(
        "--signing-key", type=Path, default=None, help="sign the command steps (PEM, Ed25519)"
    )
    upload.set_defaults(handler=jobside.cmd_pipeline_upload)
    pipeline_schedules.register(pipeline_sub)
    jobside.register(sub)

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
    start.set_defaults(handler=builds.cmd_build_create)


def cmd_pipeline_keygen(args: argparse.Namespace) -> int:
    from bastion.pipelines.signing import generate_keys

    try:
        private, public = generate_keys(args.directory)
    except OSError as exc:
        return _fail(f"cannot write the keys: {exc}", EXIT_USAGE)
    print(f"Signing key (keep it with whoever uploads pipelines): {private}")
    print(f"Verification key (give it to agents, --verification-key): {public}")
    return 0


def cmd_pipeline_webhook_secret(args: argparse.Namespace) -> int:
    target = _split(args.target)
    if target is None:
        return _fail("give the pipeline as ORG/SLUG", EXIT_USAGE)
    setup_django()
    from bastion.core.access import Principal
    from bastion.pipelines import services
    from bastion.pipelines.models import Pipeline

    pipeline = (
        Pipeline.objects.select_related("organization")
        .filter(organization__slug=target[0], slug=target[1])
        .first()
    )
    if pipeline is None:
        return _fail(f"no pipeline {args.target}")
    principal = Principal.system(organization=pipeline.organization, what="cli")
    secret = services.rotate_webhook_secret(principal, pipeline)
    base = f"/hooks/pipelines/{target[0]}/{target[1]}"
    print(f"Webhook secret (shown once): {secret}")
    print(f"GitHub: POST {base}/github (content type application/json)")
    print(f"GitLab: POST {base}/gitlab (secret token)")
    return 0


# --- pipeline create ------------------------------------------------------------------------------


def cmd_pipeline_create(args: argparse.Namespace) -> int:
    target = _split(args.target)
    if target is None:
        return _fail("give the pipeline as ORG/SLUG", EXIT_USAGE)
    if args.file is None and not args.repository:
        return _fail("give --file, or --repository to read the pipeline from it", EXIT_USAGE)
    try:
        text = args.file.read_text(encoding="utf-8") if args.file else UPLOAD_YAML
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.file}: {exc}", EXIT_USAGE)
    try:
        text = _signed(text, args.signing_key, args.repository.strip())
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
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
