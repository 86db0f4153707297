"""Server-side scrubbing: remove secrets and card numbers before anything is stored.

Keys whose name contains a sensitive word get their whole value replaced; in every string,
card numbers (Luhn-valid) and ``key=value`` pairs with a sensitive key are replaced. A project
adds its own key names and regular expressions, and can mark key names as safe.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

FILTERED = "[Filtered]"
DEFAULT_FIELDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "privatekey",
    "auth",
    "credentials",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "sentry_dsn",
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PAIR = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|secret|token|api_?key|auth|session)[\w.-]*)"
    r"(=|:\s*)([^&\s,;\"']+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[a-z0-9._~+/=-]{8,}")
MAX_DEPTH = 40
# Cheap checks that find nothing in most strings, before the three precise patterns: plain
# substring tests (C speed, no regex alternation tried at each position) for the words, and a
# regex only for strings that hold a dozen digits at all. A string shorter than the shortest
# word ("auth") holds none of them.
_WORDS = ("passw", "secret", "token", "apikey", "api_key", "auth", "session", "bearer", "basic")
_DIGITS = re.compile(r"\d[\d -]{11}")
_MIN_SENSITIVE = 4


def _maybe_sensitive(text: str) -> bool:
    if len(text) < _MIN_SENSITIVE:
        return False
    lowered = text.lower()
    for word in _WORDS:
        if word in lowered:
            return True
    return len(text) >= 12 and _DIGITS.search(text) is not None


@dataclass(frozen=True)
class ScrubRules:
    defaults: bool = True
    fields: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    safe_fields: frozenset[str] = field(default_factory=frozenset)
    # Key name -> sensitive, filled as keys are met (events repeat the same few hundred keys).
    _keys: dict[str, bool] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def build(
        cls,
        defaults: bool = True,
        fields: Iterable[str] = (),
        patterns: Iterable[str] = (),
        safe_fields: Iterable[str] = (),
    ) -> ScrubRules:
        return cls(
            defaults=defaults,
            fields=tuple(f.lower() for f in fields if f),
            patterns=tuple(re.compile(p) for p in patterns if p),
            safe_fields=frozenset(f.lower() for f in safe_fields),
        )

    def sensitive_key(self, key: str) -> bool:
        known = self._keys.get(key)
        if known is None:
            known = _sensitive_key(key.lower(), self.defaults, self.fields, self.safe_fields)
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[key] = known
        return known


MAX_CACHED_KEYS = 4096


def _sensitive_key(
    lowered: str, defaults: bool, fields: tuple[str, ...], safe_fields: frozenset[str]
) -> bool:
    if lowered in safe_fields:
        return False
    names = (DEFAULT_FIELDS if defaults else ()) + fields
    return any(name in lowered for name in names)


@functools.lru_cache(maxsize=256)
def cached_rules(
    defaults: bool, fields: tuple[str, ...], patterns: tuple[str, ...], safe_fields: tuple[str, ...]
) -> ScrubRules:
    """The rules of these settings, built once (and their key cache kept) across requests."""
    return ScrubRules.build(defaults, fields, patterns, safe_fields)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return FILTERED if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def scrub_string(text: str, rules: ScrubRules) -> str:
    if len(text) < _MIN_SENSITIVE and not rules.patterns:
        return text
    if rules.defaults and _maybe_sensitive(text):
        text = _CARD.sub(_card, text)
        text = _PAIR.sub(
            lambda m: (
                m.group(0)
                if m.group(1).lower() in rules.safe_fields
                else f"{m.group(1)}{m.group(2)}{FILTERED}"
            ),
            text,
        )
        text = _BEARER.sub(lambda m: f"{m.group(1)} {FILTERED}", text)
    for pattern in rules.patterns:
        text = pattern.sub(FILTERED, text)
    return text


def scrub(value: Any, rules: ScrubRules, depth: int = 0) -> Any:
    """A scrubbed copy of a JSON value."""
    if depth > MAX_DEPTH:
        return FILTERED
    if isinstance(value, str):
        return scrub_string(value, rules)
    if isinstance(value, dict):
        return _scrub_dict(value, rules, depth)
    if isinstance(value, list):
        return _scrub_list(value, rules, depth)
    return value


# Strings and scalars, the most common children, are handled in the loops of the two
# functions below rather than by a call to scrub() each (measured: a third of the time).


def _scrub_dict(value: dict[Any, Any], rules: ScrubRules, depth: int) -> dict[Any, Any]:
    if depth >= MAX_DEPTH:
        return {key: FILTERED for key in value}
    result: dict[Any, Any] = {}
    sensitive_key = rules.sensitive_key
    for key, item in value.items():
        if isinstance(key, str) and sensitive_key(key) and item is not None and item != "":
            result[key] = FILTERED
        elif isinstance(item, str):
            result[key] = scrub_string(item, rules)
        elif isinstance(item, dict):
            result[key] = _scrub_dict(item, rules, depth + 1)
        elif isinstance(item, list):
            result[key] = _scrub_list(item, rules, depth + 1)
        else:
            result[key] = item
    return result


def _scrub_list(value: list[Any], rules: ScrubRules, depth: int) -> list[Any]:
    # Source lines around a frame come as lists of strings: one check of them joined (a NUL
    # joins no word and no digit run) instead of one per line.
    if (
        not rules.patterns
        and value
        and all(type(item) is str for item in value)
        and not (rules.defaults and _maybe_sensitive("\x00".join(value)))
    ):
        return list(value)
    result: list[Any] = []
    for item in value:
        # Headers and cookies may come as [name, value] pairs.
        if (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and rules.sensitive_key(item[0])
        ):
            result.append([item[0], FILTERED])
        elif depth >= MAX_DEPTH:
            result.append(FILTERED)
        elif isinstance(item, str):
            result.append(scrub_string(item, rules))
        elif isinstance(item, dict):
            result.append(_scrub_dict(item, rules, depth + 1))
        elif isinstance(item, list):
            result.append(_scrub_list(item, rules, depth + 1))
        else:
            result.append(item)
    return result
