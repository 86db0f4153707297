"""A run's email addresses: ``run-<token>@<domain>`` and ``<label>-<token>@<domain>``.

The server picks one token per test of a run (``MailToken``), so every run gets addresses no
other run shares. The token decides two things: under which organization the sink files the
mail those addresses receive (its Inbox page), and which mail the run's agent may read through
its job token (nothing else).
"""

from __future__ import annotations

import re
import secrets

TOKEN_BYTES = 6
_TOKEN = re.compile(r"^[0-9a-f]{8,32}$")


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def token_of(address: str, domain: str) -> str | None:
    """The run token of ``address`` if it is a run address at ``domain``, else None."""
    local, at, host = address.strip().lower().rpartition("@")
    if not at or host != domain.lower() or "-" not in local:
        return None
    token = local.rsplit("-", 1)[1]
    return token if _TOKEN.match(token) else None


def tokens_of(recipients: list[str], domain: str) -> list[str]:
    return [t for t in (token_of(r, domain) for r in recipients) if t is not None]
