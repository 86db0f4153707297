"""Project fingerprint rules: Sentry's server-side fingerprinting, simplified.

A project keeps its rules as text, one rule a line, tried in order; the first rule whose
matchers all hold assigns the event's fingerprint (overriding the SDK's)::

    # comments and blank lines are ignored
    error.type:DatabaseError                          -> database-down
    error.type:TimeoutError message:"*upstream*"      -> upstream-timeout, {{ default }}
    module:"shop.payments.*" !tags.region:eu          -> payments, {{ type }}
    tags.tenant:acme                                  -> acme, {{ tags.tenant }}, {{ function }}

Matchers (``key:value``; ``!key:value`` negates; several on a line must all hold):

=========================== ===============================================================
``error.type`` (``type``)    the type of any exception in the chain
``error.value`` (``value``)  the value of any exception in the chain
``message``                  the message, or the value of any exception
``module`` / ``function``    the module / function of any stack frame
``path``                     the file name or absolute path of any stack frame
``logger``, ``level``        the event's logger, level
``release``, ``environment`` the event's release, environment
``tags.NAME``                the value of the tag NAME
=========================== ===============================================================

Values are shell-style globs (``*``, ``?``, ``[abc]``), matched case-insensitively; quote a
value with spaces (``"a value"``, ``\\"`` inside). The fingerprint after ``->`` is a
comma-separated list of parts; each part is text or one of the variables ``{{ default }}`` (the
default grouping's components: the rule refines rather than replaces it), ``{{ type }}``,
``{{ value }}``, ``{{ message }}``, ``{{ module }}``, ``{{ function }}`` (of the innermost
in-app frame of the raised exception), ``{{ transaction }}``, ``{{ level }}``, ``{{ logger }}``,
``{{ release }}``, ``{{ environment }}``, ``{{ tags.NAME }}``.

Versioning (STYLE.md §11): the rules are an input of ``grouping:v1``, not a new algorithm; an
event's stored fingerprint and the rule that made it (``fingerprint_rule`` in its data) show
how it was grouped. Changing the rules groups new events differently and leaves existing
issues as they are, as in Sentry.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.core.exceptions import ValidationError

MAX_RULES = 200
MAX_TEXT = 20_000
MAX_PARTS = 20

ALIASES = {
    "error.type": "type",
    "type": "type",
    "error.value": "value",
    "value": "value",
    "message": "message",
    "module": "module",
    "stack.module": "module",
    "function": "function",
    "stack.function": "function",
    "path": "path",
    "stack.abs_path": "path",
    "logger": "logger",
    "level": "level",
    "release": "release",
    "environment": "environment",
}
VARIABLES = {
    "default",
    "type",
    "error.type",
    "value",
    "error.value",
    "message",
    "module",
    "function",
    "transaction",
    "level",
    "logger",
    "release",
    "environment",
}
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))')
_MATCHER = re.compile(r"^(!?)([a-zA-Z][\w.-]*):(.*)$", re.DOTALL)
_VARIABLE = re.compile(r"^\{\{\s*([\w.-]+)\s*\}\}$")


@dataclass(frozen=True)
class Matcher:
    key: str  # a canonical key (see ALIASES) or "tags.NAME"
    pattern: str  # lower-cased glob
    negated: bool = False


@dataclass(frozen=True)
class Rule:
    line: int
    text: str
    matchers: tuple[Matcher, ...]
    fingerprint: tuple[str, ...]


def _unquote(quoted: str | None, bare: str | None) -> str:
    if quoted is not None:
        return re.sub(r"\\(.)", r"\1", quoted)
    return bare or ""


def _matcher(token: str, line: int) -> Matcher:
    match = _MATCHER.match(token)
    if match is None:
        raise ValueError(f"line {line}: {token!r} is not key:value")
    negated, key, value = match.groups()
    canonical = ALIASES.get(key.lower())
    if canonical is None and key.lower().startswith("tags.") and len(key) > 5:
        canonical = "tags." + key[5:]
    if canonical is None:
        raise ValueError(f"line {line}: unknown matcher {key!r}")
    if not value:
        raise ValueError(f"line {line}: matcher {key!r} has no value")
    return Matcher(canonical, value.lower(), negated == "!")


def _matchers(text: str, line: int) -> tuple[Matcher, ...]:
    """``key:value`` and ``key:"quoted value"`` tokens separated by spaces."""
    found = []
    pos = 0
    for _ in range(len(text) + 1):
        rest = text[pos:]
        if not rest.strip():
            break
        colon = re.match(r'\s*(!?[a-zA-Z][\w.-]*):"((?:[^"\\]|\\.)*)"', rest)
        if colon is not None:
            value = re.sub(r"\\(.)", r"\1", colon.group(2))
            found.append(_matcher(f"{colon.group(1)}:{value}", line))
            pos += colon.end()
            continue
        token = re.match(r"\s*(\S+)", rest)
        assert token is not None
        found.append(_matcher(token.group(1), line))
        pos += token.end()
    if not found:
        raise ValueError(f"line {line}: a rule needs at least one matcher before ->")
    return tuple(found)


def _fingerprint(text: str, line: int) -> tuple[str, ...]:
    parts = []
    for raw in _split_parts(text):
        part = raw.strip()
        token = _TOKEN.fullmatch(part) if part.startswith('"') else None
        if token is not None:
            part = _unquote(token.group(1), token.group(2))
        variable = _VARIABLE.match(part)
        if variable is not None:
            name = variable.group(1)
            if name not in VARIABLES and not (name.startswith("tags.") and len(name) > 5):
                raise ValueError(f"line {line}: unknown variable {{{{ {name} }}}}")
            part = "{{ " + name + " }}"
        if not part:
            raise ValueError(f"line {line}: empty fingerprint part")
        parts.append(part[:500])
    if not parts or len(parts) > MAX_PARTS:
        raise ValueError(f"line {line}: a fingerprint has 1 to {MAX_PARTS} parts after ->")
    return tuple(parts)


def _split_parts(text: str) -> list[str]:
    """Split on commas outside double quotes."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


@functools.lru_cache(maxsize=256)
def parse(text: str) -> tuple[Rule, ...]:
    """The rules of a project's text; ValueError naming the line of the first mistake."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"the rules are longer than {MAX_TEXT} characters")
    rules = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        left, arrow, right = line.partition("->")
        if not arrow:
            raise ValueError(f"line {number}: a rule is matchers -> fingerprint")
        rules.append(Rule(number, line, _matchers(left, number), _fingerprint(right, number)))
    if len(rules) > MAX_RULES:
        raise ValueError(f"more than {MAX_RULES} rules")
    return tuple(rules)


def validate(text: str) -> str:
    """The cleaned text, or ValidationError({"rules": [...]})."""
    cleaned = text.replace("\r\n", "\n").rstrip()
    try:
        parse(cleaned)
    except ValueError as exc:
        raise ValidationError({"rules": [str(exc)]}) from exc
    return cleaned


# --- matching ------------------------------------------------------------------------------------


def _frames(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        frame
        for exc in data.get("exception") or []
        for frame in (exc.get("stacktrace") or {}).get("frames") or []
    ]


def _values(data: dict[str, Any], key: str) -> list[str]:
    exceptions = data.get("exception") or []
    if key == "type":
        return [str(exc.get("type") or "") for exc in exceptions]
    if key == "value":
        return [str(exc.get("value") or "") for exc in exceptions]
    if key == "message":
        return [str(data.get("message") or ""), *_values(data, "value")]
    if key in {"module", "function"}:
        return [str(frame.get(key) or "") for frame in _frames(data)]
    if key == "path":
        return [
            str(frame.get(name) or "")
            for frame in _frames(data)
            for name in ("filename", "abs_path")
        ]
    if key.startswith("tags."):
        tags = data.get("tags") or {}
        return [str(tags[key[5:]])] if key[5:] in tags else []
    return [str(data.get(key) or "")]


def _holds(matcher: Matcher, data: dict[str, Any]) -> bool:
    found = any(fnmatchcase(value.lower(), matcher.pattern) for value in _values(data, matcher.key))
    return found != matcher.negated


def first_rule(rules: tuple[Rule, ...], data: dict[str, Any]) -> Rule | None:
    for rule in rules:
        if all(_holds(matcher, data) for matcher in rule.matchers):
            return rule
    return None


def _top_frame(data: dict[str, Any]) -> dict[str, Any]:
    exceptions = data.get("exception") or []
    frames = (exceptions[-1].get("stacktrace") or {}).get("frames") or [] if exceptions else []
    in_app = [frame for frame in frames if frame.get("in_app")] or frames
    return in_app[-1] if in_app else {}


def _variable(name: str, data: dict[str, Any]) -> str:
    exceptions = data.get("exception") or []
    raised = exceptions[-1] if exceptions else {}
    if name in {"type", "error.type"}:
        return str(raised.get("type") or "<no-type>")
    if name in {"value", "error.value"}:
        return str(raised.get("value") or "<no-value>")
    if name in {"module", "function"}:
        return str(_top_frame(data).get(name) or f"<no-{name}>")
    if name.startswith("tags."):
        return str((data.get("tags") or {}).get(name[5:], f"<no-{name}>"))
    return str(data.get(name) or f"<no-{name}>")


def apply(rules: tuple[Rule, ...], data: dict[str, Any]) -> dict[str, Any]:
    """The event with the fingerprint of the first matching rule (variables resolved,
    ``{{ default }}`` kept for grouping) and that rule's text; unchanged when none matches."""
    rule = first_rule(rules, data) if rules else None
    if rule is None:
        return data
    fingerprint = []
    for part in rule.fingerprint:
        variable = _VARIABLE.match(part)
        if variable is None or variable.group(1) == "default":
            fingerprint.append(part)
        else:
            fingerprint.append(_variable(variable.group(1), data)[:500])
    return {**data, "fingerprint": fingerprint, "fingerprint_rule": rule.text}
