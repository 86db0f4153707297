"""What the pipeline commands share: exit codes, argument parsing, error text and signing."""

from __future__ import annotations

import sys
from pathlib import Path

FINISHED = {"passed", "failed", "canceled", "not_run"}
FAILED = {"failed", "canceled"}
WAIT_INTERVAL_S = 0.5
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


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


def _signed(text: str, key_path: Path | None, repository: str) -> str:
    """The file with its command steps signed (after ``$VAR`` interpolation with this process's
    environment, as Buildkite's agent does) for the pipeline's checkout ``repository``, or
    unchanged without a key."""
    if key_path is None:
        return text
    import os

    from bastion.pipelines.signing import load_signing_key, sign_pipeline
    from bastion.pipelines.yaml import PipelineInvalid

    try:
        return sign_pipeline(text, load_signing_key(key_path), dict(os.environ), repository)
    except PipelineInvalid as exc:
        raise ValueError("; ".join(exc.messages())) from exc
