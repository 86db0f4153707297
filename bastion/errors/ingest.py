"""The ingest hot path: authenticate a key, decode and parse the body, process its items and
store them in ONE transaction, which commits before the view answers 200.

Why grouping happens in the request (and not from a queue table later): grouping is pure CPU
on an already-parsed event (microseconds); storing the event durably costs one commit either
way; doing the issue upsert in the same commit adds two or three indexed statements and no extra
fsync, while a queue would add a second commit per event (the digest's) plus a worker to run
and watch. Measured in ``bench/ingest.py``: see the numbers in the issue note. So an event is
grouped and visible the moment its 200 is sent, and nothing acknowledged is ever only queued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.text import get_valid_filename

from bastion.errors.auth import MissingAuth, find_public_key
from bastion.errors.encoding import BadEncoding, BodyTooLarge, decode_body
from bastion.errors.envelope import EnvelopeError, Item, parse_envelope, parse_event_id
from bastion.errors.grouping import GROUPING_VERSION, grouping_hash
from bastion.errors.models import (
    Attachment,
    DsnKey,
    Event,
    Issue,
    IssueStatus,
    IssueUser,
    ItemCount,
    ProjectErrorSettings,
)
from bastion.errors.normalize import InvalidEvent, normalize_event
from bastion.errors.scrubbing import ScrubRules, scrub

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


def find_key(public_key: str, project_id: str) -> DsnKey:
    """The enabled key of this project, or IngestError(403)."""
    if len(public_key) > 100:
        raise IngestError(403, "Project not found or key incorrect.")
    key = (
        DsnKey.objects.select_related("project", "project__error_settings")
        .filter(public_key_hash=hash_public_key(public_key))
        .first()
    )
    if key is None or str(key.project_id) != project_id:
        raise IngestError(403, "Project not found or key incorrect.")
    if not key.enabled:
        raise IngestError(403, "This key is disabled.")
    return key


class RateLimiter:
    """Events per minute per key, in a fixed one-minute window, in this process.

    Each web process counts on its own (no shared write on the hot path), so with N processes
    a key may get up to N times its limit; the limit protects the server, not a billing plan.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[int, tuple[int, int]] = {}

    def hit(self, key_id: int, limit: int, now: float | None = None) -> int | None:
        """Count one event; return seconds to wait when over the limit, else None."""
        if limit <= 0:
            return None
        now = time.time() if now is None else now
        window = int(now // 60)
        with self._lock:
            current, count = self._windows.get(key_id, (window, 0))
            if current != window:
                count = 0
            if count >= limit:
                self._windows[key_id] = (window, count)
                return max(1, int((window + 1) * 60 - now) + 1)
            self._windows[key_id] = (window, count + 1)
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


def scrub_rules_for(key: DsnKey) -> ScrubRules:
    # A missing reverse one-to-one raises a subclass of AttributeError: no settings, defaults.
    settings: ProjectErrorSettings | None = getattr(key.project, "error_settings", None)
    if settings is None:
        return ScrubRules.build()
    return ScrubRules.build(
        defaults=settings.scrub_defaults,
        fields=settings.scrub_fields,
        patterns=settings.scrub_patterns,
        safe_fields=settings.safe_fields,
    )


@dataclass(frozen=True)
class PreparedEvent:
    event_id: uuid.UUID
    data: dict[str, Any]
    grouping_hash: str
    timestamp: datetime
    user_hash: str | None


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
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(400, "The event is not valid JSON.") from exc
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
    timestamp = datetime.fromisoformat(data["timestamp"])
    return PreparedEvent(event_id, data, grouping_hash(data), timestamp, user_hash)


# --- storage --------------------------------------------------------------------------------------


def _locked_issue(key: DsnKey, event: PreparedEvent, now: datetime) -> Issue:
    issues = Issue.objects.select_for_update().filter(
        project_id=key.project_id,
        grouping_version=GROUPING_VERSION,
        grouping_hash=event.grouping_hash,
    )
    issue = issues.first()
    if issue is not None:
        return issue
    try:
        with transaction.atomic():
            return Issue.objects.create(
                project_id=key.project_id,
                grouping_version=GROUPING_VERSION,
                grouping_hash=event.grouping_hash,
                title=event.data["title"],
                culprit=event.data["culprit"],
                level=event.data["level"],
                first_seen=now,
                last_seen=now,
            )
    except IntegrityError:  # created by a concurrent request since our read
        return issues.get()


def _store_event(key: DsnKey, event: PreparedEvent, now: datetime) -> Event | None:
    """Insert the event and update its issue; None when this event id was already stored."""
    if Event.objects.filter(project_id=key.project_id, event_id=event.event_id).exists():
        return None
    issue = _locked_issue(key, event, now)
    data = event.data
    changed = ["event_count", "last_seen", "title", "culprit", "level"]
    issue.event_count += 1
    issue.last_seen = max(issue.last_seen, now)
    issue.title, issue.culprit, issue.level = data["title"], data["culprit"], data["level"]
    for attr, value in (("releases", data["release"]), ("environments", data["environment"])):
        values: list[str] = getattr(issue, attr)
        if value and value not in values and len(values) < 200:
            setattr(issue, attr, [*values, value])
            changed.append(attr)
    if issue.status == IssueStatus.RESOLVED:  # a regression: it happened again
        issue.status = IssueStatus.UNRESOLVED
        issue.status_changed_at = now
        changed += ["status", "status_changed_at"]
    if event.user_hash is not None:
        seen = IssueUser.objects.filter(issue=issue, user_hash=event.user_hash).exists()
        if not seen:
            IssueUser.objects.create(issue=issue, user_hash=event.user_hash)
            issue.users_affected += 1
            changed.append("users_affected")
    stored = Event.objects.create(
        project_id=key.project_id,
        issue=issue,
        event_id=event.event_id,
        timestamp=event.timestamp,
        received_at=now,
        level=data["level"],
        title=data["title"],
        release=data["release"],
        environment=data["environment"],
        grouping_version=GROUPING_VERSION,
        grouping_hash=event.grouping_hash,
        data=data,
    )
    issue.save(update_fields=changed)
    return stored


def _store_attachment(key: DsnKey, event: Event, item: Item) -> None:
    filename = get_valid_filename(str(item.headers.get("filename") or "attachment")[:200])
    attachment = Attachment(
        project_id=key.project_id,
        event=event,
        event_id_hex=event.event_id.hex,
        filename=filename or "attachment",
        content_type=str(item.headers.get("content_type") or "")[:100],
        attachment_type=str(item.headers.get("attachment_type") or "event.attachment")[:50],
        size=len(item.payload),
    )
    attachment.file.save(filename or "attachment", ContentFile(item.payload), save=False)
    attachment.save()


def _count(key: DsnKey, counts: dict[str, int], now: datetime) -> None:
    day = now.date()
    for item_type, n in sorted(counts.items()):
        rows = ItemCount.objects.filter(project_id=key.project_id, day=day, item_type=item_type)
        if rows.update(count=F("count") + n):
            continue
        try:
            with transaction.atomic():
                ItemCount.objects.create(
                    project_id=key.project_id, day=day, item_type=item_type, count=n
                )
        except IntegrityError:
            rows.update(count=F("count") + n)


def store(
    key: DsnKey,
    event: PreparedEvent | None,
    attachments: list[Item],
    counts: dict[str, int],
    now: datetime,
) -> bool:
    """Write everything of one request in one transaction. True if a new event was stored."""
    try:
        with transaction.atomic():
            stored = _store_event(key, event, now) if event is not None else None
            target = stored
            if target is None and event is not None and attachments:
                target = Event.objects.filter(
                    project_id=key.project_id, event_id=event.event_id
                ).first()
            if target is not None and (stored is not None or attachments):
                for item in attachments:
                    _store_attachment(key, target, item)
            if counts:
                _count(key, counts, now)
    except IntegrityError:
        # The same event id arrived twice at once; the other request stored it.
        if (
            event is not None
            and Event.objects.filter(project_id=key.project_id, event_id=event.event_id).exists()
        ):
            return False
        raise
    return stored is not None


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
    attachments = [item for item in items if item.type == "attachment"]
    counts: dict[str, int] = {}
    for item in items:
        if item.type in COUNTED_TYPES:
            counts[item.type] = counts.get(item.type, 0) + 1
    if (event_item is not None or attachments) and header_id is None:
        raise IngestError(400, "An envelope with an event or attachment needs an event_id.")
    event = None
    if event_item is not None:
        retry = rate_limiter.hit(key.pk, key.rate_limit_per_minute)
        if retry is not None:
            raise rate_limited(retry)
        event = prepare_event(event_item.payload, header_id, key, now, client_ip)
    elif attachments and header_id is not None:
        # Attachments sent after their event: attach to the stored event if there is one.
        event = None
        target = Event.objects.filter(project_id=key.project_id, event_id=header_id).first()
        if target is not None:
            with transaction.atomic():
                for item in attachments:
                    _store_attachment(key, target, item)
    stored = store(key, event, attachments if event is not None else [], counts, now)
    event_id = header_id.hex if header_id is not None else None
    return IngestResult(event_id=event_id, stored=stored, counted=counts)


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
    stored = store(key, event, [], {}, now)
    return IngestResult(event_id=event.event_id.hex, stored=stored)
