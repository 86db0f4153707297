"""Turn an SDK event payload into the one shape we store and show.

SDKs differ in small ways (``exception`` as a list or ``{"values": [...]}``, ``tags`` as a
dict or as pairs, ``message`` as a string or a ``logentry``); after this step they do not.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

LEVELS = {"fatal", "error", "warning", "info", "debug"}
MAX_STRING = 16 * 1024
MAX_TAGS = 100
MAX_BREADCRUMBS = 200


class InvalidEvent(ValueError):
    """The payload cannot be an event (400)."""


# NUL and lone surrogates are valid in JSON text but neither database stores them (PostgreSQL
# refuses NUL in text and jsonb; both refuse strings that cannot be UTF-8). In the payload they
# can only be a raw NUL byte (a UTF-16/32 body), a \u0000 or \uD800-\uDFFF escape, or the raw
# bytes of an encoded surrogate (json.loads reads bytes with "surrogatepass").
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_UNSTORABLE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")
_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def may_hold_unstorable(payload: bytes) -> bool:
    """Whether the event parsed from ``payload`` may hold NUL or lone surrogates (cheap: three
    substring checks for the usual event)."""
    return (
        b"\x00" in payload
        or (b"\\u" in payload and _UNSTORABLE_ESCAPE.search(payload) is not None)
        or (b"\xed" in payload and _UNSTORABLE_BYTES.search(payload) is not None)
    )


def storable(value: Any) -> Any:
    """``value`` with U+FFFD for each NUL and lone surrogate in its strings and keys.

    Iterative (a payload may nest up to orjson's 1024 levels, past Python's recursion limit).
    Surrogate pairs come out of the parser already joined, so every surrogate left is lone.
    """
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    for _ in range(10**9):  # bounded by the payload's size; ends when the stack is empty
        if not stack:
            break
        container, slot = stack.pop()
        item = container[slot]
        if isinstance(item, str):
            container[slot] = _UNSTORABLE_CHARS.sub(REPLACEMENT, item)
        elif isinstance(item, list):
            copied = list(item)
            container[slot] = copied
            stack.extend((copied, index) for index in range(len(copied)))
        elif isinstance(item, dict):
            copied_dict = {
                _UNSTORABLE_CHARS.sub(REPLACEMENT, key) if isinstance(key, str) else key: child
                for key, child in item.items()
            }
            container[slot] = copied_dict
            stack.extend((copied_dict, key) for key in copied_dict)
    return root[0]


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        value = value.get("values")
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: Any, limit: int = MAX_STRING) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def parse_timestamp(value: Any, default: datetime) -> datetime:
    """Unix seconds (int/float/numeric string) or RFC 3339; anything else → ``default``."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), tz=UTC)
        if isinstance(value, str) and value:
            try:
                return datetime.fromtimestamp(float(value), tz=UTC)
            except ValueError:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return default
    return default


def _tags(value: Any) -> dict[str, str]:
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [tuple(p) for p in value if isinstance(p, list | tuple) and len(p) == 2]
    return {_str(k, 200): _str(v, 200) for k, v in pairs[:MAX_TAGS] if k is not None}


def _message(event: dict[str, Any]) -> tuple[str, str]:
    """The formatted message and its template (the template groups better)."""
    logentry = event.get("logentry") or event.get("sentry.interfaces.Message")
    message = event.get("message")
    if isinstance(logentry, dict):
        template = _str(logentry.get("message"))
        formatted = _str(logentry.get("formatted")) or template
        params = logentry.get("params")
        if not logentry.get("formatted") and params and isinstance(params, list):
            try:
                formatted = template % tuple(params)
            except (TypeError, ValueError):
                formatted = template
        return formatted, template or formatted
    if isinstance(message, dict):
        text = _str(message.get("formatted") or message.get("message"))
        return text, _str(message.get("message")) or text
    text = _str(message)
    return text, text


def _frames(exception: dict[str, Any]) -> list[dict[str, Any]]:
    stack = exception.get("stacktrace")
    if not isinstance(stack, dict):
        return []
    frames = stack.get("frames")
    return [f for f in frames if isinstance(f, dict)] if isinstance(frames, list) else []


def _exceptions(event: dict[str, Any]) -> list[dict[str, Any]]:
    result = []
    for exc in _values(event.get("exception"))[:20]:
        item = dict(exc)
        item["type"] = _str(exc.get("type"), 200)
        item["value"] = _str(exc.get("value"))
        item["module"] = _str(exc.get("module"), 200)
        if _frames(exc):
            item["stacktrace"] = {**exc["stacktrace"], "frames": _frames(exc)[-250:]}
        result.append(item)
    return result


def _title(exceptions: list[dict[str, Any]], message: str) -> str:
    if exceptions:
        main = exceptions[-1]  # the list is oldest first; the last one is what was raised
        typ = main["type"] or "Error"
        first_line = main["value"].split("\n", 1)[0]
        return f"{typ}: {first_line}"[:500] if first_line else typ[:500]
    first = message.split("\n", 1)[0].strip()
    return (first or "<no message>")[:500]


def _culprit(event: dict[str, Any], exceptions: list[dict[str, Any]]) -> str:
    if event.get("transaction"):
        return _str(event["transaction"], 500)
    if exceptions:
        frames = _frames(exceptions[-1])
        in_app = [f for f in frames if f.get("in_app")] or frames
        if in_app:
            top = in_app[-1]
            where = top.get("module") or top.get("filename") or ""
            return f"{_str(where, 300)} in {_str(top.get('function'), 190)}"[:500]
    return ""


def normalize_event(
    payload: dict[str, Any], event_id: uuid.UUID, received_at: datetime, client_ip: str | None
) -> dict[str, Any]:
    """The stored shape. ``payload`` is trusted for nothing: every field is type-checked."""
    if not isinstance(payload, dict):
        raise InvalidEvent("the event is not a JSON object")
    message, template = _message(payload)
    exceptions = _exceptions(payload)
    level = _str(payload.get("level"), 20).lower()
    if level == "critical":
        level = "fatal"
    event: dict[str, Any] = {
        key: value
        for key, value in payload.items()
        if key
        in {"contexts", "extra", "modules", "sdk", "request", "threads", "debug_meta", "user"}
        and isinstance(value, dict)
    }
    user = event.get("user")
    if isinstance(user, dict) and user.get("ip_address") == "{{auto}}":
        event["user"] = {**user, "ip_address": client_ip}
    event.update(
        {
            "event_id": event_id.hex,
            "timestamp": parse_timestamp(payload.get("timestamp"), received_at).isoformat(),
            "received_at": received_at.isoformat(),
            "platform": _str(payload.get("platform"), 50) or "other",
            "level": level if level in LEVELS else "error",
            "logger": _str(payload.get("logger"), 200),
            "server_name": _str(payload.get("server_name"), 200),
            "release": _str(payload.get("release"), 200),
            "environment": _str(payload.get("environment"), 64),
            "transaction": _str(payload.get("transaction"), 200),
            "message": message,
            "message_template": template,
            "exception": exceptions,
            "breadcrumbs": _values(payload.get("breadcrumbs"))[-MAX_BREADCRUMBS:],
            "tags": _tags(payload.get("tags")),
            "fingerprint": [
                _str(part, 500) for part in payload.get("fingerprint") or [] if part is not None
            ][:50]
            if isinstance(payload.get("fingerprint"), list)
            else [],
        }
    )
    event["title"] = _title(exceptions, message)
    event["culprit"] = _culprit(event, exceptions)
    return event
