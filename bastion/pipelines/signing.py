"""Signed pipelines: command steps signed with a cluster's Ed25519 key where they are uploaded,
verified by agents before anything runs (pure: no Django, the agent imports it).

The private key stays with whoever uploads (``bastion pipeline create/upload --signing-key``);
the server only stores and forwards signatures, and agents holding the public key
(``--verification-key``) refuse a command job whose step is unsigned or whose command, step env,
checkout repository or agents targeting differ from what was signed: a tampered server or
database cannot inject commands, point a privileged agent's checkout at another repository, or
send a step to agents it was not signed for. Nothing runs (not even the checkout) before the
check passes.

As Buildkite's agent does, the uploader interpolates ``$VAR`` in the command and step env first,
signs the result, and writes it back with ``$`` escaped as ``$$`` so the server's interpolation
returns exactly the signed text. Signed (``SIGNED_FIELDS``): the step's command (before
``{{matrix}}`` substitution), its env, its agents query rules (the file's top-level ``agents``
merged in) and the repository URL the pipeline checks out (``""`` for none), as Buildkite signs
``repository_url``. The signed agents and repository are written into the step's ``signature``
block; the agent checks that its own tags satisfy those rules and that the job checks out that
repository. Not signed: the build's own variables (``BUILDKITE_*``), branch and commit, as in
Buildkite; nor the matrix combination a job runs with.

Signatures of the first format (``signed_fields: [command, env]``) are refused: they bind neither
the repository nor the targeting (docs/decisions.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
SIGNED_FIELDS = ["agents", "command", "env", "repository_url"]
LEGACY_FIELDS = ["command", "env"]
DEFAULT_QUEUE = "default"  # as bastion.jobs.dispatch: a step without a queue runs there
REJECTED = "signature_rejected"
# Variables that make bash run other code: refused in a signed job unless the step signed them.
UNSAFE_ENV = frozenset(
    {"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND", "PS4", "LD_PRELOAD",
     "LD_LIBRARY_PATH", "PATH", "IFS", "BASH_FUNC_", "GLOBIGNORE"}
)  # fmt: skip


class SigningError(ValueError):
    """A key that cannot be read, or a step that cannot be signed faithfully."""


def generate_keys(directory: Path) -> tuple[Path, Path]:
    """Write ``signing-key.pem`` (private, mode 0600) and ``verification-key.pem``."""
    key = Ed25519PrivateKey.generate()
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / "signing-key.pem"
    public = directory / "verification-key.pem"
    private.touch(mode=0o600, exist_ok=False)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"cannot read the signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 private key")
    return key


def load_verification_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"cannot read the verification key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path} is not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class SignedStep:
    """What one signature covers (``SIGNED_FIELDS``)."""

    command: str
    env: Mapping[str, str] = field(default_factory=dict)
    agents: Mapping[str, str] = field(default_factory=dict)
    repository_url: str = ""


def canonical(step: SignedStep) -> bytes:
    body = {
        "agents": {str(k): str(v) for k, v in step.agents.items()},
        "command": step.command,
        "env": {str(k): str(v) for k, v in step.env.items()},
        "repository_url": step.repository_url,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: Ed25519PrivateKey, step: SignedStep) -> str:
    return base64.b64encode(key.sign(canonical(step))).decode()


def verify(key: Ed25519PublicKey, signature: str, step: SignedStep) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical(step))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- signing a pipeline file (uploader side) ------------------------------------------------------


def _escape(text: str) -> str:
    from bastion.pipelines.yaml.load import interpolate_text

    escaped = text.replace("$", "$$")
    if interpolate_text(escaped, {})[0] != text:
        raise SigningError("a command cannot be signed faithfully (it holds `\\$`)")
    return escaped


def _interpolated(text: str, env: Mapping[str, str]) -> str:
    from bastion.pipelines.yaml.load import interpolate_text

    result, problems = interpolate_text(text, env)
    if problems:
        raise SigningError("; ".join(problems))
    return result


def sign_pipeline(
    text: str, key: Ed25519PrivateKey, env: Mapping[str, str], repository: str = ""
) -> str:
    """The pipeline file with every command step interpolated with ``env`` and signed for the
    pipeline's ``repository`` (its checkout URL; ``""`` when jobs check nothing out)."""
    from bastion.pipelines.upload import walk_bodies
    from bastion.pipelines.yaml import attributes as attr
    from bastion.pipelines.yaml.load import load_document

    document = load_document(text)
    pipeline_env = {str(k): str(v) for k, v in (document.get("env") or {}).items()}
    scope = {**env, **pipeline_env}
    # Pipeline-level env reaches each job too: it is signed as part of every step's env.
    signed_pipeline_env = {k: _interpolated(v, {**env}) for k, v in pipeline_env.items()}
    # Top-level agents reach each step as the server merges them: signed in every step's rules.
    pipeline_agents = {
        k: _interpolated(v, scope) for k, v in attr.agents_map(document.get("agents")).items()
    }
    for kind, body in walk_bodies(document["steps"]):
        if kind != "command":
            continue
        command = _interpolated(attr.command_text(body), scope)
        own = {k: _interpolated(v, scope) for k, v in attr.env_map(body.get("env")).items()}
        own_agents = {
            k: _interpolated(v, scope) for k, v in attr.agents_map(body.get("agents")).items()
        }
        step = SignedStep(
            command=command,
            env={**signed_pipeline_env, **own},
            agents={**pipeline_agents, **own_agents},
            repository_url=repository,
        )
        body.pop("commands", None)
        body["command"] = _escape(command)
        if step.env:
            body["env"] = {k: _escape(v) for k, v in step.env.items()}
        if step.agents:
            body["agents"] = {k: _escape(v) for k, v in step.agents.items()}
        body["signature"] = {
            "algorithm": ALGORITHM,
            "value": sign(key, step),
            "signed_fields": SIGNED_FIELDS,
            # What the agent compares with its own tags and with the job's checkout.
            "agents": {k: _escape(v) for k, v in step.agents.items()},
            "repository_url": _escape(repository),
        }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


# --- verification (agent side) ----------------------------------------------------------------------


def _substitute_matrix(text: str, combo: Mapping[str, str] | None) -> str:
    for name, value in (combo or {}).items():
        text = text.replace("{{matrix}}" if name == "" else f"{{{{matrix.{name}}}}}", value)
    return text


def _targets(rules: Mapping[str, str], tags: Mapping[str, str]) -> str | None:
    """The first rule ``tags`` do not satisfy (as the server's dispatch matches), or None."""
    offered = {**tags, "queue": tags.get("queue") or DEFAULT_QUEUE}
    for name, value in {"queue": DEFAULT_QUEUE, **rules}.items():
        if name not in offered or (value != "*" and offered[name] != value):
            return f"{name}={value}"
    return None


def _signed_step(signed: Mapping[str, Any]) -> SignedStep | str:
    fields = signed.get("fields")
    if fields == LEGACY_FIELDS:
        return (
            "the step was signed in the first format, which covers neither the checkout "
            "repository nor the agents targeting: sign the pipeline again"
        )
    if fields != SIGNED_FIELDS:
        return f"the step is signed over {fields!r}, not {SIGNED_FIELDS!r}"
    command, env = signed.get("command"), signed.get("env")
    agents, repository = signed.get("agents"), signed.get("repository_url")
    if (
        not isinstance(command, str)
        or not isinstance(env, dict)
        or not isinstance(agents, dict)
        or not isinstance(repository, str)
    ):
        return "the signed step is malformed"
    return SignedStep(command=command, env=env, agents=agents, repository_url=repository)


def check_payload(
    key: Ed25519PublicKey, payload: Mapping[str, Any], agent_tags: Mapping[str, str]
) -> str | None:
    """Why the command job must not run on an agent with ``agent_tags``, or None when its
    signature holds for what it runs, what it checks out and where it runs."""
    signed = payload.get("signed")
    if not isinstance(signed, dict) or not isinstance(signed.get("signature"), str):
        return "the step is not signed"
    step = _signed_step(signed)
    if isinstance(step, str):
        return step
    if not verify(key, signed["signature"], step):
        return "the signature does not match the step (tampered or signed with another key)"
    combo = payload.get("matrix") if isinstance(payload.get("matrix"), dict) else None
    if payload.get("command") != "set -e\n" + _substitute_matrix(step.command, combo):
        return "the command to run is not the signed command"
    raw_env = payload.get("env")
    job_env: dict[str, Any] = raw_env if isinstance(raw_env, dict) else {}
    unsafe = sorted((UNSAFE_ENV & set(job_env)) - set(step.env))
    if unsafe:
        return f"unsigned variables that change how bash runs: {', '.join(unsafe)}"
    for name, value in step.env.items():
        if job_env.get(name) != _substitute_matrix(str(value), combo):
            return f"the variable {name} differs from the signed step"
    checkout = payload.get("checkout")
    repository = checkout.get("repository") if isinstance(checkout, dict) else None
    if (repository or "") != step.repository_url:
        return (
            f"the checkout repository {repository or '(none)'!r} is not the signed one "
            f"({step.repository_url or '(none)'!r})"
        )
    rules = {k: _substitute_matrix(str(v), combo) for k, v in step.agents.items()}
    unmet = _targets(rules, agent_tags)
    if unmet is not None:
        return f"this agent is not one the signed step targets (agents: {unmet})"
    return None
