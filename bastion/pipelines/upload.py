"""Dynamic pipelines: splice the steps a job uploads into its build's pipeline file (pure).

As in Buildkite, uploaded steps go right after the (top-level) step whose job uploaded them, so
a ``wait`` further down the file also waits for them. Steps keep their keys across uploads:
before splicing, every step of the build's file that had an automatic key (``step-N``, given by
its place in the file) is given that key explicitly, and uploaded steps without a key get
``upload-<n>-<i>``. Top-level ``env`` and ``agents`` of the uploaded file apply to its steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from bastion.pipelines.yaml.errors import PipelineInvalid, Problem
from bastion.pipelines.yaml.load import load_document
from bastion.pipelines.yaml.normalize import NESTED, classify

MAX_UPLOAD_BYTES = 512 * 1024


def _body(item: Any) -> tuple[Any, dict[str, Any] | None]:
    """(the item, possibly rewritten as a mapping; the mapping that holds its attributes)."""
    if isinstance(item, str):
        found = classify(item)
        if found is None:
            return item, None
        kind = found[0]
        mapping: dict[str, Any] = {"wait": None} if kind == "wait" else {kind: item}
        return mapping, mapping
    if not isinstance(item, dict):
        return item, None
    if len(item) == 1:
        ((only, value),) = item.items()
        if only in NESTED and isinstance(value, dict):
            return item, value
    return item, item


def _has_key(body: dict[str, Any]) -> bool:
    return any(body.get(name) is not None for name in ("key", "identifier", "id"))


def _walk(items: list[Any]) -> Iterator[tuple[list[Any], int]]:
    """(list, index) of every step in file order, a group before its children."""
    for index in range(len(items)):
        yield items, index
        _, body = _body(items[index])
        children = body.get("steps") if body is not None and "group" in body else None
        if isinstance(children, list):
            yield from _walk(children)


def walk_bodies(items: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, attribute mapping) of every step in file order; bare strings are rewritten."""
    for owner, index in list(_walk(items)):
        item, body = _body(owner[index])
        found = classify(owner[index])
        if body is None or found is None:
            continue
        owner[index] = item
        yield found[0], body


def _name_steps(items: list[Any], name: Any) -> None:
    """Give every step without a key the one ``name(counter)`` returns (counter from 1)."""
    for counter, (owner, index) in enumerate(list(_walk(items)), start=1):
        item, body = _body(owner[index])
        if body is None or _has_key(body):
            continue
        body["key"] = name(counter)
        owner[index] = item


def _step_keys(items: list[Any]) -> set[str]:
    keys = set()
    for owner, index in _walk(items):
        _, body = _body(owner[index])
        if body is not None and _has_key(body):
            keys.add(str(body.get("key") or body.get("identifier") or body.get("id")))
    return keys


def _apply_defaults(items: list[Any], env: dict[str, Any], agents: dict[str, Any]) -> None:
    for owner, index in _walk(items):
        _, body = _body(owner[index])
        found = classify(owner[index])
        if body is None or found is None or found[0] != "command":
            continue
        if env:
            body["env"] = {**env, **(body.get("env") or {})}
        if agents and not body.get("agents"):
            body["agents"] = dict(agents)


def _top_level_index(items: list[Any], key: str) -> int | None:
    for index, item in enumerate(items):
        if key in _step_keys([item]):
            return index
    return None


def splice(build_yaml: str, uploaded: str, after_key: str) -> str:
    """The build's file with ``uploaded``'s steps inserted after step ``after_key``."""
    if len(uploaded.encode("utf-8", errors="replace")) > MAX_UPLOAD_BYTES:
        raise PipelineInvalid([Problem("", f"the upload is larger than {MAX_UPLOAD_BYTES} bytes")])
    document = load_document(build_yaml)
    addition = load_document(uploaded)
    steps: list[Any] = document["steps"]
    new: list[Any] = addition["steps"]
    if not new:
        raise PipelineInvalid([Problem("steps", "the upload has no steps")])
    _name_steps(steps, lambda counter: f"step-{counter}")
    taken = _step_keys(steps)
    upload = next(n for n in range(1, len(taken) + 2) if f"upload-{n}-1" not in taken)
    _name_steps(new, lambda counter: f"upload-{upload}-{counter}")
    _apply_defaults(new, addition.get("env") or {}, addition.get("agents") or {})
    position = _top_level_index(steps, after_key)
    at = len(steps) if position is None else position + 1
    document["steps"] = steps[:at] + new + steps[at:]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
