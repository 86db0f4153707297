"""Commands run from inside a job with its job token: ``meta-data``, ``secret get``,
``pipeline upload``, ``annotate`` and ``artifact``. They talk to the agent API only (no database, no Django)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bastion.agent.stream import REDACTIONS_ENV
from bastion.cli.pipeline_common import _fail, _signed

# --- from inside a job, with the job token -------------------------------------------------------

JOB_TOKEN_ENV = "BASTION_AGENT_ACCESS_TOKEN"  # noqa: S105 (the name of the variable)
JOB_ID_ENV = "BASTION_JOB_ID"
ENDPOINT_ENV = "BASTION_AGENT_ENDPOINT"
DEFAULT_PIPELINE_FILES = (".bastion/pipeline.yml", ".buildkite/pipeline.yml")
MAX_DOWNLOADS = 1000


def register(sub: Any) -> None:
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

    secret = sub.add_parser("secret", help="(inside a job) the cluster's secrets")
    secret_sub = secret.add_subparsers(dest="secret_command", metavar="ACTION", required=True)
    secret_get = secret_sub.add_parser("get", help="print the value of the secret NAME")
    secret_get.add_argument("name")
    secret_get.set_defaults(handler=cmd_secret_get)

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


def cmd_secret_get(args: argparse.Namespace) -> int:
    def run(client: JobClient) -> int:
        found = client.call("GET", client.job(f"/secrets/{quote(args.name, safe='')}"))
        value = found.json()["value"]
        _redact_on_the_agent(value)
        print(value)
        return 0

    return _job_command(run)


def _redact_on_the_agent(value: str) -> None:
    """Tell the agent running this job to redact ``value`` from the log, before it is printed
    (the server redacts it too)."""
    path = os.environ.get(REDACTIONS_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(value) + "\n")
    except OSError as exc:
        print(f"bastion: could not ask the agent to redact the secret: {exc}", file=sys.stderr)


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
            # The job's pipeline checks out BUILDKITE_REPO: the uploaded steps are signed for it.
            text = _signed(text, args.signing_key, os.environ.get("BUILDKITE_REPO", ""))
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
