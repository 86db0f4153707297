"""Keep secrets out of logs: a logging filter and a helper for job logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Our own bearer tokens, Authorization headers and key=value pairs with secret-looking names.
_PATTERNS = [
    re.compile(r"bst[a-z]{3}_[A-Za-z0-9_\-]{20,}"),
    re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)\S+"),
    re.compile(
        r"(?i)((?:password|passwd|secret|token|api_key|apikey)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,]+"
    ),
]
MASK = "[REDACTED]"
# Names of variables whose values are secrets even when nobody declared them (issue 6: *_TOKEN,
# *_SECRET, *_PASSWORD, *_KEY), as Buildkite's agent redacts by name. Bastion's own variables
# (BUILDKITE_STEP_KEY, ...) are never matched: their values are names, not secrets.
SECRET_ENV_NAME = re.compile(
    r"(?i)^(?!BUILDKITE_|BASTION_).*_(TOKEN|SECRET|PASSWORD|KEY|CONNECTION_STRING)$"
)


def secret_env_names(env: Iterable[str]) -> list[str]:
    """The names in ``env`` that look like secrets (see SECRET_ENV_NAME), sorted."""
    return sorted(name for name in env if SECRET_ENV_NAME.match(name))


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """Only the known secret values masked (longest first); values under 4 characters are kept."""
    for value in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    text = mask_values(text, secrets)
    text = _PATTERNS[0].sub(MASK, text)
    for pattern in _PATTERNS[1:]:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
