"""Validation against Buildkite's public JSON schema (draft-07, vendored as ``schema.json``).

Each step is validated against the definition of its own type, so an error names the step and
the attribute instead of "not valid under any of the given schemas".
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match

SCHEMA_VERSION = "buildkite/pipeline-schema@829d2f7c715b10256b9a4ea23c3798aac9ea25d2"


@cache
def schema() -> dict[str, Any]:
    text = resources.files("bastion.pipelines.yaml").joinpath("schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(definition: str) -> Draft7Validator:
    root = schema()
    return Draft7Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": root["definitions"]}
    )


@cache
def _root_property(name: str) -> Draft7Validator:
    root = schema()
    return Draft7Validator({**root["properties"][name], "definitions": root["definitions"]})


def known_keys(definition: str) -> frozenset[str]:
    return frozenset(schema()["definitions"][definition].get("properties", {}))


def root_keys() -> frozenset[str]:
    return frozenset(schema()["properties"])


def _describe(error: ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    return f"{path}: {error.message}" if path else error.message


def step_errors(definition: str, step: dict[str, Any]) -> list[str]:
    errors = list(_validator(definition).iter_errors(step))
    if not errors:
        return []
    best = best_match(errors)
    others = [e for e in errors if e is not best and not e.context]
    return [_describe(e) for e in [best, *others][:5]]


def root_errors(name: str, value: Any) -> list[str]:
    errors = list(_root_property(name).iter_errors(value))
    if not errors:
        return []
    return [_describe(best_match(errors))]
