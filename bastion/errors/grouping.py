"""Grouping events into issues. The algorithm is versioned (STYLE.md §11): the id below is
stored on every issue and event, so changing the algorithm means a new id, never a silent
split or merge of existing issues.

``grouping:v1``:
1. the event's ``fingerprint`` if any — from the first matching project fingerprint rule
   (``bastion.errors.fingerprinting``, an input of this version), else the SDK's — where
   ``{{ default }}`` stands for the default components;
2. else, for an exception chain: each exception's type plus its in-app frames (all frames when
   none is in-app) as module (or file name) and function — never line numbers;
   an exception without frames contributes its type and normalized value;
3. else the normalized message (template preferred), numbers, hex ids and UUIDs replaced.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

GROUPING_VERSION = "grouping:v1"
_DEFAULT = re.compile(r"^\{\{\s*default\s*\}\}$")
_VARIABLE = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"
    r"|0x[0-9a-f]+|\b[0-9a-f]{16,}\b|\d+(?:\.\d+)?",
    re.IGNORECASE,
)


def normalize_message(text: str) -> str:
    return _VARIABLE.sub("<var>", text.strip())[:1000]


def _frame_key(frame: dict[str, Any]) -> str:
    where = frame.get("module") or frame.get("filename") or frame.get("abs_path") or "?"
    return f"{where}:{frame.get('function') or '?'}"


def default_components(event: dict[str, Any]) -> list[str]:
    exceptions: list[dict[str, Any]] = event.get("exception") or []
    if exceptions:
        parts: list[str] = []
        for exc in exceptions:
            frames = (exc.get("stacktrace") or {}).get("frames") or []
            chosen = [f for f in frames if f.get("in_app")] or frames
            parts.append(f"type:{exc.get('type') or 'Error'}")
            if chosen:
                parts.extend(f"frame:{_frame_key(f)}" for f in chosen)
            else:
                parts.append(f"value:{normalize_message(str(exc.get('value') or ''))}")
        return parts
    return [
        f"message:{normalize_message(event.get('message_template') or event.get('message') or '')}"
    ]


def grouping_components(event: dict[str, Any]) -> list[str]:
    fingerprint: list[str] = event.get("fingerprint") or []
    if not fingerprint:
        return default_components(event)
    parts: list[str] = []
    for part in fingerprint:
        if _DEFAULT.match(part):
            parts.extend(default_components(event))
        else:
            parts.append(f"fingerprint:{part}")
    return parts


def grouping_hash(event: dict[str, Any]) -> str:
    body = json.dumps(grouping_components(event), separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
