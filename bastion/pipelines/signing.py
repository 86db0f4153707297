"""Signed pipelines: command steps signed with a cluster's Ed25519 key where they are uploaded,
verified by agents before anything runs (pure: no Django, the agent imports it).

The private key stays with whoever uploads (``bastion pipeline create/upload --signing-key``);
the server only stores and forwards signatures, and agents holding the public key
(``--verification-key``) refuse a command job whose step is unsigned or whose command, step env,
checkout repository, agents targeting or matrix combination differ from what was signed: a
tampered server or database cannot inject commands (also not through a ``{{matrix}}`` value),
point a privileged agent's checkout at another repository, or send a step to agents it was not
signed for. Nothing runs (not even the checkout) before the check passes.

As Buildkite's agent does, the uploader interpolates ``$VAR`` in the command and step env first,
signs the result, and writes it back with ``$`` escaped as ``$$`` so the server's interpolation
returns exactly the signed text. Signed (``SIGNED_FIELDS``): the step's command (before
``{{matrix}}`` substitution), its env, its agents query rules (the file's top-level ``agents``
merged in), its matrix definition (``matrix_definition``: setup, and each adjustment's ``with``
and ``skip``; ``null`` without a matrix) and the repository URL the pipeline checks out (``""``
for none), as Buildkite signs ``matrix`` and ``repository_url``. The signed agents and repository
are written into the step's ``signature`` block; the agent checks that its own tags satisfy those
rules, that the job checks out that repository, and that the job's matrix combination is one the
signed definition makes (``Matrix.combinations``, the scheduler's own expansion), then that the
command, env and rules it was sent are the signed ones with that combination substituted. Not
signed: the build's own variables (``BUILDKITE_*``), branch and commit, as in Buildkite; nor an
adjustment's ``soft_fail`` (it only grades the exit on the server, as the step's own does).

Signatures of older formats (``signed_fields`` without ``matrix``) are refused with a call to sign
again: they do not bind what a ``{{matrix}}`` value puts into the command (docs/decisions.md).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.pipelines.yaml.steps import Matrix, MatrixAdjustment

ALGORITHM = "EdDSA"
SIGNED_FIELDS = ["agents", "command", "env", "matrix", "repository_url"]
# Earlier formats, refused with what they leave unbound.
OLDER_FORMATS = {
    ("command", "env"): (
        "the first format, which covers neither the checkout repository, the agents targeting "
        "nor the matrix"
    ),
    ("agents", "command", "env", "repository_url"): (
        "the second format, which does not cover the matrix combinations"
    ),
}
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
    # ``matrix_definition`` of the step's matrix; None for a step without one.
    matrix: Mapping[str, Any] | None = None


def matrix_definition(matrix: Matrix | None) -> dict[str, Any] | None:
    """The signed form of a step's matrix: its setup and its adjustments' ``with`` and ``skip``
    (the single-list form is the dimension ``""``)."""
    if matrix is None:
        return None
    return {
        "setup": {name: list(values) for name, values in matrix.dimensions},
        "adjustments": [{"with": dict(a.with_), "skip": a.skip} for a in matrix.adjustments],
    }


def canonical(step: SignedStep) -> bytes:
    body = {
        "agents": {str(k): str(v) for k, v in step.agents.items()},
        "command": step.command,
        "env": {str(k): str(v) for k, v in step.env.items()},
        "matrix": step.matrix,
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


def _strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string in it (not to mapping keys)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {key: _strings(item, change) for key, item in value.items()}
    return value


def _signed_matrix(body: dict[str, Any], scope: Mapping[str, str]) -> dict[str, Any] | None:
    """The step's matrix, interpolated, as signed; written back escaped into ``body``."""
    from bastion.pipelines.yaml import attributes as attr

    raw = body.get("matrix")
    if raw is None:
        return None
    raw = _strings(raw, lambda text: _interpolated(text, scope))
    try:
        matrix = attr.matrix(raw)
    except (AttributeError, TypeError, IndexError, ValueError) as exc:
        raise SigningError(f"the matrix of step {body.get('key')!r} cannot be read") from exc
    body["matrix"] = _strings(raw, _escape)
    return matrix_definition(matrix)


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
            matrix=_signed_matrix(body, scope),
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
    older = OLDER_FORMATS.get(tuple(fields)) if isinstance(fields, list) else None
    if older is not None:
        return f"the step was signed in {older}: sign the pipeline again"
    if fields != SIGNED_FIELDS:
        return f"the step is signed over {fields!r}, not {SIGNED_FIELDS!r}"
    command, env = signed.get("command"), signed.get("env")
    agents, repository = signed.get("agents"), signed.get("repository_url")
    matrix = signed.get("matrix")
    if (
        not isinstance(command, str)
        or not isinstance(env, dict)
        or not isinstance(agents, dict)
        or not isinstance(repository, str)
        or not (matrix is None or isinstance(matrix, dict))
    ):
        return "the signed step is malformed"
    return SignedStep(
        command=command, env=env, agents=agents, repository_url=repository, matrix=matrix
    )


def _combinations(definition: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """The combinations a signed matrix definition makes, expanded as the scheduler expands the
    step's matrix; None when the definition is not of ``matrix_definition``'s form."""
    setup, adjustments = definition.get("setup"), definition.get("adjustments")
    if not isinstance(setup, dict) or not isinstance(adjustments, list):
        return None
    if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in setup.values()):
        return None
    parsed = []
    for item in adjustments:
        with_ = item.get("with") if isinstance(item, dict) else None
        if (
            not isinstance(with_, dict)
            or not all(isinstance(v, str) for v in with_.values())
            or not isinstance(item.get("skip"), bool)
        ):
            return None
        parsed.append(
            MatrixAdjustment(with_=tuple(with_.items()), skip=item["skip"], soft_fail=None)
        )
    matrix = Matrix(
        dimensions=tuple((str(name), tuple(values)) for name, values in setup.items()),
        adjustments=tuple(parsed),
    )
    return [combo for combo, _ in matrix.combinations()]


def _combination(step: SignedStep, payload: Mapping[str, Any]) -> dict[str, str] | str:
    """The job's matrix combination (``{}`` for none) when the signed step makes it, else why not."""
    combo = payload.get("matrix")
    if combo is not None and not isinstance(combo, dict):
        return "the job's matrix combination is malformed"
    if step.matrix is None:
        if combo:
            return f"the job has a matrix combination {combo!r}, but the signed step has no matrix"
        return {}
    combinations = _combinations(step.matrix)
    if combinations is None:
        return "the signed matrix is malformed"
    if combo not in combinations:
        return f"the matrix combination {combo!r} is not one the signed matrix makes"
    return dict(combo)


def check_payload(
    key: Ed25519PublicKey, payload: Mapping[str, Any], agent_tags: Mapping[str, str]
) -> str | None:
    """Why the command job must not run on an agent with ``agent_tags``, or None when its
    signature holds for what it runs (with which matrix combination), what it checks out and
    where it runs."""
    signed = payload.get("signed")
    if not isinstance(signed, dict) or not isinstance(signed.get("signature"), str):
        return "the step is not signed"
    step = _signed_step(signed)
    if isinstance(step, str):
        return step
    if not verify(key, signed["signature"], step):
        return "the signature does not match the step (tampered or signed with another key)"
    combo = _combination(step, payload)
    if isinstance(combo, str):
        return combo
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
