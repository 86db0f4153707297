"""The scrubber's walk as it was before the batched string check (bastion/errors/scrubbing.py),
kept as the oracle of a differential test: the fast walk must give exactly its output."""

from __future__ import annotations

from typing import Any

from bastion.errors.scrubbing import (
    FILTERED,
    MAX_DEPTH,
    ScrubRules,
    _maybe_sensitive,
    scrub_string,
)


def reference_scrub(value: Any, rules: ScrubRules, depth: int = 0) -> Any:
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
