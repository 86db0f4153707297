"""Ignore rules, compiled once per project and matched against each normalized event in the
request thread (no database on the hot path past the cache).

Kinds: ``exception_type`` (exact type of any exception in the chain), ``message_regex``
(``re.search`` over the message, the title and the exception values), ``tag`` (``key=value``,
exact), ``transaction`` and ``url`` (shell-style globs such as ``/health*``).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.core.exceptions import ValidationError

from bastion.errors.models import IgnoreRule, RuleKind

MAX_MATCHED_TEXT = 10_000  # characters of each field a regex sees


@dataclass(frozen=True)
class CompiledRule:
    rule_id: int
    kind: str
    value: str
    regex: re.Pattern[str] | None = None


def validate(kind: str, value: str) -> str:
    """The cleaned value of a rule, or ValidationError."""
    value = value.strip()
    if kind not in RuleKind.values:
        raise ValidationError({"kind": [f"One of {', '.join(RuleKind.values)}."]})
    if not value or len(value) > 500:
        raise ValidationError({"value": ["Between 1 and 500 characters."]})
    if kind == RuleKind.MESSAGE_REGEX:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValidationError({"value": [f"Not a regular expression: {exc}"]}) from exc
    if kind == RuleKind.TAG and "=" not in value:
        raise ValidationError({"value": ["A tag rule is key=value."]})
    return value


def compile_rule(rule: IgnoreRule) -> CompiledRule:
    regex = re.compile(rule.value) if rule.kind == RuleKind.MESSAGE_REGEX else None
    return CompiledRule(rule.pk, rule.kind, rule.value, regex)


def _texts(data: dict[str, Any]) -> list[str]:
    texts = [str(data.get("message") or ""), str(data.get("title") or "")]
    texts += [str(exc.get("value") or "") for exc in data.get("exception") or []]
    return [t[:MAX_MATCHED_TEXT] for t in texts if t]


def matches(rule: CompiledRule, data: dict[str, Any]) -> bool:
    if rule.kind == RuleKind.EXCEPTION_TYPE:
        return any(exc.get("type") == rule.value for exc in data.get("exception") or [])
    if rule.kind == RuleKind.MESSAGE_REGEX:
        assert rule.regex is not None
        return any(rule.regex.search(text) for text in _texts(data))
    if rule.kind == RuleKind.TAG:
        key, _, value = rule.value.partition("=")
        return str((data.get("tags") or {}).get(key.strip(), "\0")) == value.strip()
    if rule.kind == RuleKind.TRANSACTION:
        return fnmatchcase(str(data.get("transaction") or ""), rule.value)
    if rule.kind == RuleKind.URL:
        request = data.get("request") or {}
        url = str(request.get("url") or "") if isinstance(request, dict) else ""
        return bool(url) and fnmatchcase(url, rule.value)
    return False


def first_match(rules: list[CompiledRule], data: dict[str, Any]) -> int | None:
    """The id of the first (oldest) rule the event matches."""
    for rule in rules:
        if matches(rule, data):
            return rule.rule_id
    return None


class RuleCache:
    """Enabled rules by project, for a few seconds. Changes through ``bastion.errors.services``
    clear this process's cache at once; other processes see them within ``ttl`` seconds."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._rules: dict[int, tuple[float, list[CompiledRule]]] = {}

    def get(self, project_id: int) -> list[CompiledRule]:
        now = time.monotonic()
        with self._lock:
            cached = self._rules.get(project_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        rules = [
            compile_rule(rule)
            for rule in IgnoreRule.objects.filter(project_id=project_id, enabled=True).order_by(
                "pk"
            )
        ]
        with self._lock:
            if len(self._rules) > 10_000:
                self._rules.clear()
            self._rules[project_id] = (now, rules)
        return rules

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


rule_cache = RuleCache()
