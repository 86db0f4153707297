"""Signed pipelines: command steps signed with a cluster's Ed25519 key where they are uploaded,
verified by agents before anything runs (pure: no Django, the agent imports it).

The private key stays with whoever uploads (``bastion pipeline create/upload --signing-key``);
the server only stores and forwards signatures, and agents holding the public key
(``--verification-key``) refuse a command job whose step is unsigned or whose command or step
env differ from what was signed: a tampered server or database cannot inject commands.

As Buildkite's agent does, the uploader interpolates ``$VAR`` in the command and step env first,
signs the result, and writes it back with ``$`` escaped as ``$$`` so the server's interpolation
returns exactly the signed text. Signed: the step's command (before ``{{matrix}}`` substitution)
and its env. Not signed: the build's own variables (``BUILDKITE_*``), as in Buildkite.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
SIGNED_FIELDS = ["command", "env"]
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


def canonical(command: str, env: Mapping[str, str]) -> bytes:
    body = {"command": command, "env": {str(k): str(v) for k, v in env.items()}}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: Ed25519PrivateKey, command: str, env: Mapping[str, str]) -> str:
    return base64.b64encode(key.sign(canonical(command, env))).decode()


def verify(key: Ed25519PublicKey, signature: str, command: str, env: Mapping[str, str]) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical(command, env))
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


def sign_pipeline(text: str, key: Ed25519PrivateKey, env: Mapping[str, str]) -> str:
    """The pipeline file with every command step interpolated with ``env`` and signed."""
    from bastion.pipelines.upload import walk_bodies
    from bastion.pipelines.yaml import attributes as attr
    from bastion.pipelines.yaml.load import load_document

    document = load_document(text)
    pipeline_env = {str(k): str(v) for k, v in (document.get("env") or {}).items()}
    scope = {**env, **pipeline_env}
    # Pipeline-level env reaches each job too: it is signed as part of every step's env.
    signed_pipeline_env = {k: _interpolated(v, {**env}) for k, v in pipeline_env.items()}
    for kind, body in walk_bodies(document["steps"]):
        if kind != "command":
            continue
        command = _interpolated(attr.command_text(body), scope)
        own = {k: _interpolated(v, scope) for k, v in attr.env_map(body.get("env")).items()}
        step_env = {**signed_pipeline_env, **own}
        body.pop("commands", None)
        body["command"] = _escape(command)
        if step_env:
            body["env"] = {k: _escape(v) for k, v in step_env.items()}
        body["signature"] = {
            "algorithm": ALGORITHM,
            "value": sign(key, command, step_env),
            "signed_fields": SIGNED_FIELDS,
        }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


# --- verification (agent side) ----------------------------------------------------------------------


def _substitute_matrix(text: str, combo: Mapping[str, str] | None) -> str:
    for name, value in (combo or {}).items():
        text = text.replace("{{matrix}}" if name == "" else f"{{{{matrix.{name}}}}}", value)
    return text


def check_payload(key: Ed25519PublicKey, payload: Mapping[str, Any]) -> str | None:
    """Why the command job must not run, or None when its signature holds for what it runs."""
    signed = payload.get("signed")
    if not isinstance(signed, dict) or not isinstance(signed.get("signature"), str):
        return "the step is not signed"
    command, env = signed.get("command"), signed.get("env")
    if not isinstance(command, str) or not isinstance(env, dict):
        return "the signed step is malformed"
    if not verify(key, signed["signature"], command, env):
        return "the signature does not match the step (tampered or signed with another key)"
    combo = payload.get("matrix") if isinstance(payload.get("matrix"), dict) else None
    if payload.get("command") != "set -e\n" + _substitute_matrix(command, combo):
        return "the command to run is not the signed command"
    raw_env = payload.get("env")
    job_env: dict[str, Any] = raw_env if isinstance(raw_env, dict) else {}
    unsafe = sorted((UNSAFE_ENV & set(job_env)) - set(env))
    if unsafe:
        return f"unsigned variables that change how bash runs: {', '.join(unsafe)}"
    for name, value in env.items():
        if job_env.get(name) != _substitute_matrix(str(value), combo):
            return f"the variable {name} differs from the signed step"
    return None
