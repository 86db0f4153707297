"""Where a Sentry client puts its DSN public key, parsed without I/O."""

from __future__ import annotations

from urllib.parse import urlsplit


class MissingAuth(Exception):
    """No key anywhere, or conflicting keys (401)."""


def parse_auth_header(value: str) -> dict[str, str]:
    """``Sentry sentry_key=abc, sentry_version=7`` → ``{"sentry_key": "abc", ...}``."""
    text = value.strip()
    if text[:7].lower() == "sentry ":
        text = text[7:]
    pairs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            pairs[key.strip().lower()] = val.strip()
    return pairs


def key_from_dsn(dsn: object) -> str | None:
    if not isinstance(dsn, str) or not dsn:
        return None
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


def project_id_from_dsn(dsn: str) -> str:
    return urlsplit(dsn).path.rstrip("/").rsplit("/", 1)[-1]


def find_public_key(
    x_sentry_auth: str | None,
    authorization: str | None,
    query_key: str | None,
    envelope_dsn: object = None,
) -> str:
    """The public key, from the first place that has one. Two different keys → MissingAuth."""
    found: list[str] = []
    if x_sentry_auth:
        key = parse_auth_header(x_sentry_auth).get("sentry_key")
        if key:
            found.append(key)
    if authorization and authorization.strip()[:7].lower() == "sentry ":
        key = parse_auth_header(authorization).get("sentry_key")
        if key:
            found.append(key)
    if query_key:
        found.append(query_key)
    dsn_key = key_from_dsn(envelope_dsn)
    if dsn_key:
        found.append(dsn_key)
    if not found:
        raise MissingAuth("missing authorization information")
    if len(set(found)) > 1:
        raise MissingAuth("multiple authorization payloads")
    return found[0]
