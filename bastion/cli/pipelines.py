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
from bastion.pipelines.repository import UPLOAD_YAML

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
    upload.set_defaults(handler=cmd_pipeline_upload)
    _register_job_commands(sub)

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


# --- signing -------------------------------------------------------------------------------------


def _signed(text: str, key_path: Path | None) -> str:
    """The file with its command steps signed (after ``$VAR`` interpolation with this process's
    environment, as Buildkite's agent does), or unchanged without a key."""
    if key_path is None:
        return text
    import os

    from bastion.pipelines.signing import load_signing_key, sign_pipeline
    from bastion.pipelines.yaml import PipelineInvalid

    try:
        return sign_pipeline(text, load_signing_key(key_path), dict(os.environ))
    except PipelineInvalid as exc:
        raise ValueError("; ".join(exc.messages())) from exc


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
        text = _signed(text, args.signing_key)
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


# --- from inside a job, with the job token -------------------------------------------------------

JOB_TOKEN_ENV = "BASTION_AGENT_ACCESS_TOKEN"  # noqa: S105 (the name of the variable)
JOB_ID_ENV = "BASTION_JOB_ID"
ENDPOINT_ENV = "BASTION_AGENT_ENDPOINT"
DEFAULT_PIPELINE_FILES = (".bastion/pipeline.yml", ".buildkite/pipeline.yml")
MAX_DOWNLOADS = 1000


def _register_job_commands(sub: Any) -> None:
    meta = sub.add_parser("meta-data", help="(inside a job) the build's meta-data")
    meta_sub = meta.add_subparsers(dest="meta_command", metavar="ACTION", required=True)
    set_ = meta_sub.add_parser("set", help="set KEY to VALUE (or to stdin)")
    set_.add_argument("key")
    set_.add_argument("value", nargs="?", default=None)
    set_.set_defaults(handler=cmd_meta_data_set)
    get = meta_sub.add_parser("get", help="print the value of KEY")
    get.add_argument("key")
    get.add_argument("--default", default=None, help="printed when KEY is not set")
    get.set_defaults(handler=cmd_meta_data_get)
    keys = meta_sub.add_parser("keys", help="list the keys")
    keys.set_defaults(handler=cmd_meta_data_keys)

    artifact = sub.add_parser("artifact", help="(inside a job) the build's artifacts")
    art_sub = artifact.add_subparsers(dest="artifact_command", metavar="ACTION", required=True)
    up = art_sub.add_parser("upload", help="upload files matching GLOB (relative paths)")
    up.add_argument("glob")
    up.set_defaults(handler=cmd_artifact_upload)
    down = art_sub.add_parser("download", help="download the build's artifacts matching GLOB")
    down.add_argument("glob")
    down.add_argument("destination", type=Path)
    down.set_defaults(handler=cmd_artifact_download)

    annotate = sub.add_parser("annotate", help="(inside a job) annotate the build")
    annotate.add_argument("body", nargs="?", default=None, help="default: stdin")
    annotate.add_argument("--context", default="default")
    annotate.add_argument("--style", default="default", help="default/info/success/warning/error")
    annotate.add_argument("--append", action="store_true")
    annotate.set_defaults(handler=cmd_annotate)


class JobCallError(Exception):
    pass


class JobClient:
    """The job's own calls to the server, with the token the agent put in its environment."""

    def __init__(self, endpoint: str, job_id: str, token: str) -> None:
        import httpx

        self.base = f"{endpoint.rstrip('/')}/api/v1/agent"
        self.job_id = job_id
        self.http = httpx.Client(headers={"Authorization": f"Token {token}"}, timeout=60)

    @classmethod
    def from_env(cls) -> JobClient:
        import os

        values = [os.environ.get(n, "") for n in (ENDPOINT_ENV, JOB_ID_ENV, JOB_TOKEN_ENV)]
        if not all(values):
            raise JobCallError(
                f"not inside a job: {ENDPOINT_ENV}, {JOB_ID_ENV} and {JOB_TOKEN_ENV} must be set"
            )
        return cls(*values)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, self.base + path, **kwargs)
        except httpx.HTTPError as exc:
            raise JobCallError(f"the server could not be reached: {exc}") from exc
        if response.status_code >= 400:
            raise JobCallError(_message(response))
        return response

    def job(self, path: str) -> str:
        return f"/jobs/{self.job_id}{path}"


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    text = str(detail or f"HTTP {response.status_code}")
    return f"{text} {json.dumps(errors)}" if errors else text


def _job_command(run: Callable[[JobClient], int]) -> int:
    try:
        client = JobClient.from_env()
        try:
            return run(client)
        finally:
            client.http.close()
    except JobCallError as exc:
        return _fail(str(exc))


def _post(client: JobClient, path: str, body: dict[str, Any]) -> int:
    client.call("POST", client.job(path), json=body)
    return 0


def cmd_meta_data_set(args: argparse.Namespace) -> int:
    value = args.value if args.value is not None else sys.stdin.read()
    body = {"key": args.key, "value": value}
    return _job_command(lambda c: _post(c, "/meta-data", body))


def cmd_meta_data_get(args: argparse.Namespace) -> int:
    def run(client: JobClient) -> int:
        try:
            found = client.call("GET", client.job(f"/meta-data/{quote(args.key, safe='')}"))
        except JobCallError:
            if args.default is None:
                raise
            print(args.default)
            return 0
        print(found.json()["value"])
        return 0

    return _job_command(run)


def cmd_meta_data_keys(args: argparse.Namespace) -> int:
    def run(client: JobClient) -> int:
        for key in client.call("GET", client.job("/meta-data")).json()["keys"]:
            print(key)
        return 0

    return _job_command(run)


def _pipeline_text(name: str | None) -> str:
    if name == "-":
        return sys.stdin.read()
    candidates = [Path(name)] if name else [Path(p) for p in DEFAULT_PIPELINE_FILES]
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise JobCallError(f"no pipeline file: {', '.join(str(p) for p in candidates)}")


def cmd_pipeline_upload(args: argparse.Namespace) -> int:
    def run(client: JobClient) -> int:
        try:
            text = _pipeline_text(args.file)
        except (OSError, UnicodeDecodeError) as exc:
            raise JobCallError(f"cannot read the pipeline: {exc}") from exc
        try:
            text = _signed(text, args.signing_key)
        except ValueError as exc:
            raise JobCallError(str(exc)) from exc
        added = client.call("POST", client.job("/pipeline"), json={"yaml": text}).json()["added"]
        print(f"Added {len(added)} step(s): {', '.join(added)}")
        return 0

    return _job_command(run)


def cmd_annotate(args: argparse.Namespace) -> int:
    body = {
        "body": args.body if args.body is not None else sys.stdin.read(),
        "context": args.context,
        "style": args.style,
        "append": args.append,
    }
    return _job_command(lambda c: _post(c, "/annotations", body))


def cmd_artifact_upload(args: argparse.Namespace) -> int:
    def run(client: JobClient) -> int:
        root = Path.cwd().resolve()
        files = [p for p in sorted(root.glob(args.glob)) if p.is_file() and not p.is_symlink()]
        files = [p for p in files if p.resolve().is_relative_to(root)][:MAX_DOWNLOADS]
        if not files:
            raise JobCallError(f"no file matches {args.glob!r}")
        for file in files:
            relative = file.relative_to(root).as_posix()
            with file.open("rb") as handle:
                client.call(
                    "POST",
                    f"/artifacts/{client.job_id}",
                    data={"path": relative},
                    files={"file": (file.name, handle)},
                )
            print(f"Uploaded {relative}")
        return 0

    return _job_command(run)


def cmd_artifact_download(args: argparse.Namespace) -> int:
    def run(client: JobClient) -> int:
        found = client.call(
            "GET", client.job("/build-artifacts"), params={"pattern": args.glob}
        ).json()
        if not found:
            raise JobCallError(f"no artifact of this build matches {args.glob!r}")
        root = args.destination.resolve()
        for artifact in found[:MAX_DOWNLOADS]:
            target = (root / artifact["path"]).resolve()
            if not target.is_relative_to(root):
                continue
            response = client.call("GET", client.job(f"/build-artifacts/{artifact['id']}"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(response.content)
            print(f"Downloaded {artifact['path']}")
        return 0

    return _job_command(run)
