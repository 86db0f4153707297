"""The ingest hot path: authenticate a key, decode and parse the body, normalize, scrub and
fingerprint the event in the request thread, then make the write durable in the process's
ingest journal and answer 200; the writer thread groups and stores it a moment later
(``bastion.errors.committer``, ``bastion.errors.journal``).

Why the 200 waits for the journal and not for the database: measured in ``bench/ingest.py``,
waiting for the commit made throughput a matter of latency (16 clients, each waiting for a
serialized SQLite commit of a batch no larger than a process's threads) while the CPU sat partly
idle. A journal append is one ``write`` and one ``fdatasync`` shared by the process's concurrent
requests, never waits for another process, and lets the writer store hundreds of events per
transaction. Everything that can refuse a request (key, rate limit, framing, JSON, size,
normalization) still runs before the 200, so a client gets its 4xx as before; what is
acknowledged is on disk and replayed if the process dies before storing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from bastion.errors import fingerprinting, jsoncodec
from bastion.errors.auth import MissingAuth, find_public_key
from bastion.errors.committer import CommitTimeout, GroupCommitter
from bastion.errors.encoding import BadEncoding, BodyTooLarge, decode_body
from bastion.errors.envelope import EnvelopeError, Item, parse_envelope, parse_event_id
from bastion.errors.grouping import grouping_hash
from bastion.errors.models import DsnKey, ProjectErrorSettings
from bastion.errors.normalize import (
    InvalidEvent,
    may_hold_unstorable,
    normalize_event,
    storable,
)
from bastion.errors.rules import first_match, rule_cache
from bastion.errors.scrubbing import ScrubRules, cached_rules, scrub
from bastion.errors.store import PendingWrite, PreparedEvent

logger = logging.getLogger(__name__)

MAX_ENVELOPE_BYTES = 50 * 1024 * 1024  # decompressed
MAX_EVENT_BYTES = 1024 * 1024
MAX_STORE_BYTES = 1024 * 1024
COUNTED_TYPES = frozenset(
    {"transaction", "session", "sessions", "client_report", "check_in", "user_report", "feedback"}
)
RATE_LIMITED_CATEGORIES = "error;default;attachment"


class IngestError(Exception):
    """A refusal, with the HTTP status the client gets."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass(frozen=True)
class RequestAuth:
    x_sentry_auth: str | None = None
    authorization: str | None = None
    query_key: str | None = None


@dataclass(frozen=True)
class IngestResult:
    event_id: str | None
    stored: bool = False
    counted: dict[str, int] = field(default_factory=dict)


def hash_public_key(public_key: str) -> str:
    return hashlib.sha256(public_key.encode()).hexdigest()


# --- keys and rate limits ----------------------------------------------------------------------


class KeyCache:
    """Keys by hash, for a few seconds: ingest looks a key up on every request. A change made
    through ``bastion.errors.services`` clears this process's cache at once; other processes
    see it within ``ttl`` seconds."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, DsnKey | None]] = {}

    def get(self, key_hash: str) -> DsnKey | None:
        now = time.monotonic()
        with self._lock:
            cached = self._keys.get(key_hash)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        key = (
            DsnKey.objects.select_related("project", "project__error_settings")
            .filter(public_key_hash=key_hash)
            .first()
        )
        with self._lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[key_hash] = (now, key)
        return key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


key_cache = KeyCache()
# BASTION_INGEST_GROUP_COMMIT=false stores each request in its own transaction, in the request
# thread, before the 200 (what the test suite does, inside each test's transaction); the default
# journals the write and stores it in batches off the request.
committer = GroupCommitter(
    enabled=os.environ.get("BASTION_INGEST_GROUP_COMMIT", "true").lower()
    not in {"0", "false", "no", "off"}
)


def find_key(public_key: str, project_id: str) -> DsnKey:
    """The enabled key of this project, or IngestError(403)."""
    if len(public_key) > 100:
        raise IngestError(403, "Project not found or key incorrect.")
    key = key_cache.get(hash_public_key(public_key))
    if key is None or str(key.project_id) != project_id:
        raise IngestError(403, "Project not found or key incorrect.")
    if not key.enabled:
        raise IngestError(403, "This key is disabled.")
    return key


class RateLimiter:
    """Events per minute per key, in this process: a one-minute window that opens at the key's
    first event (not at the wall clock's minute, so a burst is never split across two windows).

    Each web process counts on its own (no shared write on the hot path), so with N processes
    a key may get up to N times its limit; the limit protects the server, not a billing plan.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[int, tuple[float, int]] = {}

    def hit(self, key_id: int, limit: int, now: float | None = None) -> int | None:
        """Count one event; return seconds to wait when over the limit, else None."""
        if limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            opened, count = self._windows.get(key_id, (now, 0))
            if now - opened >= 60:
                opened, count = now, 0
            if count >= limit:
                self._windows[key_id] = (opened, count)
                return max(1, int(opened + 60 - now) + 1)
            self._windows[key_id] = (opened, count + 1)
        return None

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


rate_limiter = RateLimiter()


def rate_limited(retry_after: int) -> IngestError:
    return IngestError(
        429,
        "Rate limit of this key exceeded.",
        {
            "Retry-After": str(retry_after),
            "X-Sentry-Rate-Limits": f"{retry_after}:{RATE_LIMITED_CATEGORIES}:key:key_quota",
        },
    )


# --- processing ---------------------------------------------------------------------------------


def _error_settings(key: DsnKey) -> ProjectErrorSettings | None:
    """The project's settings, looked up once per key object (a cached key lives seconds): a
    missing reverse one-to-one raises, and raising on every event cost measurable CPU."""
    try:
        return cast(ProjectErrorSettings | None, key.__dict__["_error_settings"])
    except KeyError:
        found = getattr(key.project, "error_settings", None)
        key.__dict__["_error_settings"] = found
        return found


def scrub_rules_for(key: DsnKey) -> ScrubRules:
    settings = _error_settings(key)
    if settings is None:
        return cached_rules(True, (), (), ())
    return cached_rules(
        settings.scrub_defaults,
        tuple(settings.scrub_fields),
        tuple(settings.scrub_patterns),
        tuple(settings.safe_fields),
    )


def fingerprint_rules_for(key: DsnKey) -> tuple[fingerprinting.Rule, ...]:
    settings = _error_settings(key)
    if settings is None or not settings.fingerprint_rules:
        return ()
    try:
        return fingerprinting.parse(settings.fingerprint_rules)
    except ValueError:  # saved through validation; a bad row groups by default, loudly
        logger.warning("project %s has invalid fingerprint rules", key.project_id)
        return ()


def _user_hash(data: dict[str, Any]) -> str | None:
    user = data.get("user")
    if not isinstance(user, dict):
        return None
    for field_name in ("id", "username", "email", "ip_address"):
        value = user.get(field_name)
        if value not in (None, ""):
            return hashlib.sha256(f"{field_name}:{value}".encode()).hexdigest()
    return None


def prepare_event(
    payload: bytes,
    event_id: uuid.UUID | None,
    key: DsnKey,
    received_at: datetime,
    client_ip: str | None,
) -> PreparedEvent:
    """Parse, normalize, scrub and fingerprint one event payload (no database)."""
    if len(payload) > MAX_EVENT_BYTES:
        raise IngestError(413, f"Event is larger than {MAX_EVENT_BYTES} bytes.")
    try:
        raw = jsoncodec.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(400, "The event is not valid JSON.") from exc
    except RecursionError as exc:
        raise IngestError(400, "The event is nested too deeply.") from exc
    if may_hold_unstorable(payload):
        raw = storable(raw)
    if not isinstance(raw, dict):
        raise IngestError(400, "The event is not a JSON object.")
    if event_id is None:
        try:
            event_id = parse_event_id(raw["event_id"]) if "event_id" in raw else uuid.uuid4()
        except EnvelopeError as exc:
            raise IngestError(400, str(exc)) from exc
    try:
        data = normalize_event(raw, event_id, received_at, client_ip)
    except InvalidEvent as exc:
        raise IngestError(400, str(exc)) from exc
    user_hash = _user_hash(data)
    data = scrub(data, scrub_rules_for(key))
    data = fingerprinting.apply(fingerprint_rules_for(key), data)
    timestamp = datetime.fromisoformat(data["timestamp"])
    suppressed_by = first_match(rule_cache.get(key.project_id), data)
    return PreparedEvent(
        event_id,
        data,
        grouping_hash(data),
        timestamp,
        user_hash,
        suppressed_by,
        data_json=jsoncodec.dumps_text(data),
    )


# --- the two endpoints ----------------------------------------------------------------------------


def _key_for(auth: RequestAuth, project_id: str, envelope_dsn: object = None) -> DsnKey:
    try:
        public_key = find_public_key(
            auth.x_sentry_auth, auth.authorization, auth.query_key, envelope_dsn
        )
    except MissingAuth as exc:
        raise IngestError(401, str(exc)) from exc
    return find_key(public_key, project_id)


def _decode(body: bytes, content_encoding: str, limit: int) -> bytes:
    try:
        return decode_body(body, content_encoding, limit)
    except BodyTooLarge as exc:
        raise IngestError(413, str(exc)) from exc
    except BadEncoding as exc:
        raise IngestError(400, str(exc)) from exc


def ingest_envelope(
    project_id: str,
    body: bytes,
    content_encoding: str,
    auth: RequestAuth,
    client_ip: str | None,
) -> IngestResult:
    has_request_auth = bool(auth.x_sentry_auth or auth.authorization or auth.query_key)
    # Refuse unknown keys before spending CPU on decompression when the key is in the request.
    key = _key_for(auth, project_id) if has_request_auth else None
    data = _decode(body, content_encoding, MAX_ENVELOPE_BYTES)
    try:
        envelope = parse_envelope(data)
    except EnvelopeError as exc:
        raise IngestError(400, str(exc)) from exc
    if key is None:
        key = _key_for(auth, project_id, envelope.headers.get("dsn"))
    return process_envelope(key, envelope.headers, envelope.items, client_ip)


def process_envelope(
    key: DsnKey, headers: dict[str, Any], items: tuple[Item, ...], client_ip: str | None
) -> IngestResult:
    now = datetime.now(tz=UTC)
    header_id: uuid.UUID | None = None
    if "event_id" in headers:
        try:
            header_id = parse_event_id(headers["event_id"])
        except EnvelopeError as exc:
            raise IngestError(400, str(exc)) from exc
    event_item = next((item for item in items if item.type == "event"), None)
    write = PendingWrite(project_id=key.project_id, received_at=now)
    write.attachments = [item for item in items if item.type == "attachment"]
    for item in items:
        if item.type in COUNTED_TYPES:
            write.counts[item.type] = write.counts.get(item.type, 0) + 1
    if (event_item is not None or write.attachments) and header_id is None:
        raise IngestError(400, "An envelope with an event or attachment needs an event_id.")
    if event_item is not None:
        retry = rate_limiter.hit(key.pk, key.rate_limit_per_minute)
        if retry is not None:
            raise rate_limited(retry)
        write.event = prepare_event(event_item.payload, header_id, key, now, client_ip)
    else:
        write.attachment_event_id = header_id
    stored = _submit(write) if write.event or write.attachments or write.counts else False
    event_id = header_id.hex if header_id is not None else None
    return IngestResult(event_id=event_id, stored=stored, counted=write.counts)


def _submit(write: PendingWrite) -> bool:
    try:
        return committer.submit(write)
    except CommitTimeout as exc:
        raise IngestError(503, "The server is overloaded; the event was not stored.") from exc
    except OSError as exc:  # the journal could not be written (disk full, permissions)
        logger.error("ingest journal write failed: %s", exc)
        raise IngestError(503, "The server could not store the event; retry later.") from exc


def _store_body(body: bytes, content_encoding: str) -> bytes:
    if content_encoding:
        return _decode(body, content_encoding, MAX_STORE_BYTES)
    stripped = body.lstrip()
    if stripped[:1] in {b"{", b""}:
        if len(body) > MAX_STORE_BYTES:
            raise IngestError(413, f"Event is larger than {MAX_STORE_BYTES} bytes.")
        return body
    # Legacy clients send base64 of zlib-compressed JSON without a Content-Encoding.
    try:
        compressed = base64.b64decode(stripped, validate=False)
    except binascii.Error as exc:
        raise IngestError(400, "The body is neither JSON nor base64.") from exc
    return _decode(compressed, "deflate", MAX_STORE_BYTES)


def ingest_store(
    project_id: str,
    body: bytes,
    content_encoding: str,
    auth: RequestAuth,
    client_ip: str | None,
) -> IngestResult:
    key = _key_for(auth, project_id)
    payload = _store_body(body, content_encoding)
    retry = rate_limiter.hit(key.pk, key.rate_limit_per_minute)
    if retry is not None:
        raise rate_limited(retry)
    now = datetime.now(tz=UTC)
    event = prepare_event(payload, None, key, now, client_ip)
    stored = _submit(PendingWrite(project_id=key.project_id, received_at=now, event=event))
    return IngestResult(event_id=event.event_id.hex, stored=stored)
