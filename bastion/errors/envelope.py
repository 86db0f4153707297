"""The Sentry envelope format, parsed from bytes with no I/O (pure; fuzzed in the test suite).

    Envelope = Headers { "\\n" Item } [ "\\n" ]
    Item     = Headers "\\n" Payload

Each header is one line of compact JSON. An item with ``length`` carries exactly that many
payload bytes followed by ``\\n`` or the end; an item without it runs to the next ``\\n``.
Anything else raises ``EnvelopeError`` (400 at the HTTP edge).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from bastion.errors import jsoncodec

MAX_HEADER_BYTES = 16 * 1024
MAX_ITEMS = 1000


class EnvelopeError(ValueError):
    """The body is not a well-formed envelope."""


@dataclass(frozen=True)
class Item:
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type", ""))


@dataclass(frozen=True)
class Envelope:
    headers: dict[str, Any]
    items: tuple[Item, ...]


def _header_line(data: bytes, start: int, what: str) -> tuple[dict[str, Any], int]:
    """Parse one JSON header line at ``start``; return it and the offset after its newline."""
    end = data.find(b"\n", start, start + MAX_HEADER_BYTES + 1)
    if end == -1:
        if len(data) - start > MAX_HEADER_BYTES:
            raise EnvelopeError(f"{what} header line is longer than {MAX_HEADER_BYTES} bytes")
        end = len(data)
    line = data[start:end]
    try:
        value = jsoncodec.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"{what} header is not valid JSON") from exc
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} header is not a JSON object")
    return value, end + 1


def _length_of(headers: dict[str, Any]) -> int | None:
    length = headers.get("length")
    if length is None:
        return None
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise EnvelopeError("item length must be a non-negative integer")
    return length


def parse_envelope(data: bytes) -> Envelope:
    headers, pos = _header_line(data, 0, "envelope")
    items: list[Item] = []
    size = len(data)
    while pos < size:
        if len(items) >= MAX_ITEMS:
            raise EnvelopeError(f"more than {MAX_ITEMS} items")
        if data[pos : pos + 1] == b"\n":  # tolerate blank lines between items
            pos += 1
            continue
        item_headers, pos = _header_line(data, pos, "item")
        if "type" not in item_headers or not isinstance(item_headers["type"], str):
            raise EnvelopeError("item header has no type")
        length = _length_of(item_headers)
        if length is None:
            end = data.find(b"\n", pos)
            end = size if end == -1 else end
            payload = data[pos:end]
            pos = end + 1
        else:
            end = pos + length
            if end > size:
                raise EnvelopeError("end of body while reading an item of the declared length")
            payload = data[pos:end]
            if end < size and data[end : end + 1] != b"\n":
                raise EnvelopeError("item payload is longer than its declared length")
            pos = end + 1
        items.append(Item(item_headers, payload))
    return Envelope(headers, tuple(items))


def parse_event_id(value: object) -> uuid.UUID:
    """An event id: 32 hex digits or a dashed UUID."""
    if not isinstance(value, str):
        raise EnvelopeError("event_id must be a string")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise EnvelopeError("event_id is not a UUID") from exc


def serialize_envelope(headers: dict[str, Any], items: list[tuple[dict[str, Any], bytes]]) -> bytes:
    """The inverse of ``parse_envelope`` (length-framed); used by tests and the benchmark."""
    parts = [json.dumps(headers, separators=(",", ":")).encode()]
    for item_headers, payload in items:
        framed = {**item_headers, "length": len(payload)}
        parts.append(json.dumps(framed, separators=(",", ":")).encode())
        parts.append(payload)
    return b"\n".join(parts) + b"\n"
