"""Server-side scrubbing: remove secrets and card numbers before anything is stored.

Keys whose name contains a sensitive word get their whole value replaced; in every string,
card numbers (Luhn-valid) and ``key=value`` pairs with a sensitive key are replaced. A project
adds its own key names and regular expressions, and can mark key names as safe.
"""

from __future__ import annotations

import bisect
import functools
import itertools
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
# The same search over ASCII text at C speed: digits become "0", spaces and dashes "1",
# anything else "x" (sre scans a class-led pattern position by position, ~6x slower).
_DIGIT_CLASSES = bytes(
    ord("0") if chr(c) in "0123456789" else ord("1") if chr(c) in " -" else ord("x")
    for c in range(256)
)
_DIGITS_ASCII = re.compile(rb"0[01]{11}")


def _digit_run_starts(text: str) -> list[int]:
    """Where ``_DIGITS`` matches in ``text``."""
    if text.isascii():
        classes = text.encode("ascii").translate(_DIGIT_CLASSES)
        return [match.start() for match in _DIGITS_ASCII.finditer(classes)]
    return [match.start() for match in _DIGITS.finditer(text)]


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
    """A scrubbed copy of a JSON value.

    Two passes: the copy replaces the values of sensitive keys and notes where every string
    went; then the strings are checked all at once (joined, so the word and digit searches run
    in C over one text rather than per string in Python) and only the ones that hold something
    are scrubbed in place in the copy. An event's strings are rarely sensitive, and a source
    context list is one entry. Gives exactly the result of checking each string on its own
    (``tests/errors/test_scrubbing.py`` compares it with that walk).
    """
    if depth > MAX_DEPTH:
        return FILTERED
    if isinstance(value, str):
        return scrub_string(value, rules)
    if not isinstance(value, dict | list):
        return value
    walk = _Walk(rules)
    copied = (
        walk.copy_dict(value, depth) if isinstance(value, dict) else walk.copy_list(value, depth)
    )
    for index in walk.sensitive_texts():
        container, slot = walk.slots[index]
        if slot is _WHOLE_LIST:
            container[:] = [
                scrub_string(item, rules) if type(item) is str else item for item in container
            ]
        else:
            container[slot] = scrub_string(walk.texts[index], rules)
    return copied


_WHOLE_LIST = object()  # the slot of a list of strings noted as one text


class _Walk:
    """The copying pass of ``scrub``: texts to check and where each one sits in the copy."""

    def __init__(self, rules: ScrubRules) -> None:
        self.rules = rules
        self.known_keys = rules._keys
        # With project patterns every string is scrubbed; else short ones cannot hold anything.
        self.min_length = 0 if rules.patterns else _MIN_SENSITIVE
        self.texts: list[str] = []
        self.slots: list[tuple[Any, Any]] = []

    def copy_dict(self, value: dict[Any, Any], depth: int) -> dict[Any, Any]:
        if depth >= MAX_DEPTH:
            return {key: FILTERED for key in value}
        result: dict[Any, Any] = {}
        known = self.known_keys
        for key, item in value.items():
            if isinstance(key, str):
                sensitive = known.get(key)
                if sensitive is None:
                    sensitive = self.rules.sensitive_key(key)
                if sensitive and item is not None and item != "":
                    result[key] = FILTERED
                    continue
            if type(item) is str:
                result[key] = item
                if len(item) >= self.min_length:
                    self.texts.append(item)
                    self.slots.append((result, key))
            elif isinstance(item, dict):
                result[key] = self.copy_dict(item, depth + 1)
            elif isinstance(item, list):
                result[key] = self.copy_list(item, depth + 1)
            elif isinstance(item, str):  # a str subclass: scrubbed now, it is rare
                result[key] = scrub_string(item, self.rules)
            else:
                result[key] = item
        return result

    def copy_list(self, value: list[Any], depth: int) -> list[Any]:
        if value and all(type(item) is str for item in value):
            # Source lines around a frame: one text (a NUL joins no word and no digit run).
            result = list(value)
            if depth >= MAX_DEPTH:
                return [FILTERED] * len(value) if self._holds_any(result) else result
            self.texts.append("\x00".join(value))
            self.slots.append((result, _WHOLE_LIST))
            return result
        result = []
        for item in value:
            # Headers and cookies may come as [name, value] pairs.
            if (
                isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], str)
                and self.rules.sensitive_key(item[0])
            ):
                result.append([item[0], FILTERED])
            elif depth >= MAX_DEPTH:
                result.append(FILTERED)
            elif type(item) is str:
                result.append(item)
                if len(item) >= self.min_length:
                    self.texts.append(item)
                    self.slots.append((result, len(result) - 1))
            elif isinstance(item, dict):
                result.append(self.copy_dict(item, depth + 1))
            elif isinstance(item, list):
                result.append(self.copy_list(item, depth + 1))
            elif isinstance(item, str):
                result.append(scrub_string(item, self.rules))
            else:
                result.append(item)
        return result

    def _holds_any(self, texts: list[str]) -> bool:
        if self.rules.patterns:
            return True
        return self.rules.defaults and _maybe_sensitive("\x00".join(texts))

    def sensitive_texts(self) -> list[int]:
        """Indexes of the texts that need ``scrub_string``."""
        texts = self.texts
        if self.rules.patterns:
            return list(range(len(texts)))
        if not self.rules.defaults or not texts:
            return []
        joined = "\x00".join(texts)
        lowered = joined.lower()
        if len(lowered) != len(joined):  # a character lowers to several: positions shift
            return [i for i, text in enumerate(texts) if _maybe_sensitive(text)]
        positions = _digit_run_starts(joined)
        for word in _WORDS:
            found = lowered.find(word)
            for _ in range(len(lowered)):
                if found < 0:
                    break
                positions.append(found)
                found = lowered.find(word, found + len(word))
        if not positions:
            return []
        starts = list(itertools.accumulate((len(text) + 1 for text in texts), initial=0))
        return sorted({bisect.bisect_right(starts, position) - 1 for position in positions})
