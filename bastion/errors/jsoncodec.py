"""JSON on the ingest hot path: orjson's speed, the standard library's answers.

Per event, ``json.loads`` of the payload and ``json.dumps`` of the stored data cost about 13
and 17 us of ``prepare_event`` for a 3 kB event from sentry-sdk (72 and 85 us at 17 kB); these
functions take about 7 and 3 us (38 and 13 us).

``loads`` returns what ``json.loads`` returns and raises what it raises (``json.JSONDecodeError``,
``UnicodeDecodeError``, ...), by falling back to it wherever orjson could differ:

- orjson refuses ``NaN``, ``Infinity``, numbers beyond a double, lone surrogates, a byte order
  mark, encodings other than UTF-8 (``json.loads`` reads UTF-16 and UTF-32 bodies) and nesting
  deeper than 1024: ``json.loads`` answers those, as it did before;
- orjson *accepts* integers beyond 64 bits, as floats, where ``json.loads`` keeps them exact: a
  text with a run of 19 digits or more (the shortest integer past int64 and uint64) goes to
  ``json.loads`` without trying orjson; a long run of digits inside a string takes that path too.

One difference is left: orjson parses nesting up to 1024 levels, where ``json.loads`` raised
``RecursionError`` from about 1000 levels less the caller's stack (about 950 in a request).
Ingest answered those with a 500 and now stores them (scrubbing cuts such depth); past 1024
levels it is the same 500 as before.

``dumps_text`` writes what ``json.dumps(value, separators=(",", ":"))`` wrote, spelled
differently (non-ASCII characters as UTF-8 instead of ``\\uXXXX`` escapes, floats in shortest
form: ``1.5e-7`` for ``1.5e-07``), which both databases store as the same value. Control
characters, ``\\u0000`` included, are escaped by both. What orjson refuses (integers beyond 64
bits, lone surrogates, non-string keys, nesting deeper than 254) or writes its own way
(subclasses, dataclasses, datetimes) is written by ``json.dumps``, or refused as it refused it.

Decision: NaN and infinities are written as ``null`` (orjson's choice, and JavaScript's
``JSON.stringify``'s), not as ``json.dumps``'s ``NaN``/``Infinity``. Those are not JSON: SQLite's
``JSON_VALID`` check on the event's data column and PostgreSQL's jsonb both refuse them, so an
event holding one was acknowledged and then refused by the database (kept in the journal's
``.rejected`` file; a 500 without the journal) and never shown; it is now stored, with null
there. Keeping ``NaN`` would also have cost a walk over every value orjson wrote (``null`` is in
nearly every SDK event): 5 us at 3 kB, 27 us at 17 kB.
"""

from __future__ import annotations

import json
from math import isfinite
from typing import Any, Final

import orjson

# Digits to b"0", everything else to b" ": a run of 19 zeros is a run of 19 digits.
_DIGITS: Final = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_NUMBER: Final = b"0" * 19
# Types that json.dumps refuses or writes its own way go back to it (orjson raises on them).
_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``: the same value, or the same exception."""
    raw = _utf8(data)
    if raw is not None and _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # not raised from here: json.loads below raises what it always raised
    return json.loads(data)


def _utf8(data: bytes | str) -> bytes | None:
    if not isinstance(data, str):
        return data
    try:
        return data.encode()
    except UnicodeEncodeError:  # lone surrogates, which only json.loads reads
        return None


def dumps_text(value: Any) -> str:
    """Compact JSON text of ``value``; NaN and infinities as null (see the module's doc)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        pass  # not raised from here: json.dumps below raises what it always raised
    text = json.dumps(value, separators=(",", ":"))
    if "NaN" in text or "Infinity" in text:  # a non-finite float, or those letters in a string
        return json.dumps(_finite(value), separators=(",", ":"))
    return text


def _finite(value: Any) -> Any:
    """``value`` with None for each NaN and infinity (json.dumps has just written it whole)."""
    if isinstance(value, float):
        return value if isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
