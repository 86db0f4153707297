"""Reading ``pipeline.yml``: YAML (or JSON) into plain data, and ``$VAR`` interpolation.

Several YAML documents in one file are concatenated, as ``buildkite-agent pipeline upload`` does;
a bare list is a list of steps. Interpolation follows the Buildkite agent: ``$VAR``, ``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR?message}``, ``${VAR:start:length}``; ``$$`` and
``\\$`` escape a dollar. It runs on string values after parsing, so a value can never inject YAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from bastion.pipelines.yaml.errors import PipelineInvalid, Problem

MAX_BYTES = 1024 * 1024
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(
    r"\$\$|\\\$|\$(?P<bare>" + _NAME + r")|\$\{(?P<name>" + _NAME + r")(?P<rest>[^}]*)\}"
)
_SUBSTRING = re.compile(r"^:\s*(-?\d+)(?::(\d+))?$")


class _Loader(yaml.SafeLoader):
    """Safe loading, with duplicate mapping keys refused (YAML would keep the last silently)."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, dict | list):  # ``{{}}``: YAML allows it, a pipeline never means it
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping or list cannot be a key", key_node.start_mark
            )
        if isinstance(key, str) and key in seen and key != "<<":
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_pairs(node, deep=True))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


class AnyVariable(dict[str, str]):
    """An interpolation environment in which every variable is set (to the empty string unless
    given): for checking a stored pipeline before any build gives its variables values."""

    def __missing__(self, key: str) -> str:
        return ""

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key: str, default: object = None) -> str:
        return self[key]


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return Problem("", message)
    return Problem(f"line {mark.line + 1}, column {mark.column + 1}", message)


def load_document(text: str) -> dict[str, Any]:
    """Parse the file into ``{"steps": [...], ...}``; YAML errors name the line."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise PipelineInvalid([Problem("", f"the pipeline is larger than {MAX_BYTES} bytes")])
    try:
        documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        raise PipelineInvalid([_yaml_problem(exc)]) from exc
    merged: dict[str, Any] = {"steps": []}
    if not documents:
        raise PipelineInvalid([Problem("", "the pipeline is empty: it needs `steps`")])
    for number, document in enumerate(documents, start=1):
        if isinstance(document, list):
            document = {"steps": document}
        if not isinstance(document, dict):
            where = f"document {number}" if len(documents) > 1 else ""
            raise PipelineInvalid([Problem(where, "a pipeline is a mapping with `steps`")])
        for key, value in document.items():
            if key == "steps" and isinstance(value, list):
                merged["steps"].extend(value)
            elif key in ("env", "agents") and isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return merged


def _substitute(match: re.Match[str], env: Mapping[str, str], problems: list[str]) -> str:
    token = match.group(0)
    if token in ("$$", "\\$"):
        return "$"
    name = match.group("bare") or match.group("name")
    rest = match.group("rest") or ""
    value = env.get(name)
    if not rest:
        return value or ""
    if rest.startswith(":-"):
        return value if value else rest[2:]
    if rest.startswith("-"):
        return value if value is not None else rest[1:]
    if rest.startswith("?"):
        if value is None:
            problems.append(f"${{{name}}} is not set" + (f": {rest[1:]}" if rest[1:] else ""))
            return ""
        return value
    substring = _SUBSTRING.match(rest)
    if substring:
        start = int(substring.group(1))
        text = value or ""
        end = None if substring.group(2) is None else start + int(substring.group(2))
        if start < 0 and end is not None and end >= 0:
            end = None
        return text[start:end]
    problems.append(f"unsupported substitution ${{{name}{rest}}}")
    return token


def interpolate_text(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    problems: list[str] = []
    return _TOKEN.sub(lambda m: _substitute(m, env, problems), text), problems


def interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Interpolate every string value (not mapping keys) of ``value``."""
    problems: list[Problem] = []
    result = _walk(value, env, path, problems)
    if problems:
        raise PipelineInvalid(problems)
    return result


def _walk(value: Any, env: Mapping[str, str], path: str, problems: list[Problem]) -> Any:
    if isinstance(value, str):
        text, errors = interpolate_text(value, env)
        problems.extend(Problem(path, error) for error in errors)
        return text
    if isinstance(value, list):
        return [_walk(item, env, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            key: _walk(item, env, f"{path}.{key}" if path else str(key), problems)
            for key, item in value.items()
        }
    return value
