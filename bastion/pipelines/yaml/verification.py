"""Bastion's own step kinds: ``scan:``, ``browser:`` and the ``release:`` marker.

They are extensions of Buildkite's schema (which has nothing like them), so they are validated
here: the step's common attributes (``label``, ``key``, ``depends_on``, ``if``, ``branches``,
``soft_fail``, ``skip``, ...) against the schema's command step, which defines them the same
way, and the attributes inside ``scan:`` / ``browser:`` / ``release:`` by name, each unknown
one reported with its step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.pipelines.yaml import attributes as attr
from bastion.pipelines.yaml import schema
from bastion.pipelines.yaml.errors import Problem
from bastion.pipelines.yaml.steps import BrowserStep, ReleaseStep, ScanStep, VerificationStep

KINDS = ("scan", "browser", "release")
# Step attributes these kinds share with command steps (validated by the command step schema).
COMMON = frozenset(
    {"label", "name", "key", "identifier", "id", "depends_on", "allow_dependency_failure",
     "if", "branches", "soft_fail", "skip"}
)  # fmt: skip
FIELDS: Mapping[str, frozenset[str]] = {
    "scan": frozenset({"target", "project", "profile", "fail_on"}),
    "browser": frozenset({"suite", "test", "environment", "project"}),
    "release": frozenset({"version", "environment", "project"}),
}
REQUIRED: Mapping[str, tuple[str, ...]] = {"scan": ("target",), "release": ("version",)}
SEVERITIES = ("info", "low", "medium", "high", "critical")
NAME_LIMIT = 200


def check(kind: str, data: dict[str, Any], where: str) -> list[Problem]:
    """Everything wrong with one step of a Bastion kind, by name (empty when it is valid)."""
    problems = [
        Problem(where, f"unknown key `{key}` for a {kind} step")
        for key in sorted(set(data) - COMMON - {kind})
    ]
    common = {key: value for key, value in data.items() if key in COMMON}
    problems += [Problem(where, error) for error in schema.step_errors("commandStep", common)]
    body = data.get(kind)
    if not isinstance(body, dict):
        return [*problems, Problem(where, f"`{kind}` must be a mapping of its settings")]
    problems += [
        Problem(where, f"unknown field `{kind}.{key}`") for key in sorted(set(body) - FIELDS[kind])
    ]
    for key, value in body.items():
        if key in FIELDS[kind] and (isinstance(value, dict | list) or len(str(value)) > NAME_LIMIT):
            problems.append(Problem(where, f"`{kind}.{key}` must be a short text"))
    problems += [
        Problem(where, f"a {kind} step needs `{kind}.{key}`")
        for key in REQUIRED.get(kind, ())
        if body.get(key) is None  # may be empty until interpolated per build
    ]
    return problems + _specific(kind, body, where)


def _specific(kind: str, body: dict[str, Any], where: str) -> list[Problem]:
    if kind == "scan":
        fail_on = attr.scalar(body.get("fail_on", "high")).lower()
        if fail_on not in (*SEVERITIES, "none"):
            choices = ", ".join((*SEVERITIES, "none"))
            return [Problem(where, f"`scan.fail_on` must be one of {choices}")]
        profile = body.get("profile")
        if profile is not None and str(profile) not in _profiles():
            return [Problem(where, f"`scan.profile`: no profile {str(profile)!r}")]
    if kind == "browser" and (body.get("suite") is None) == (body.get("test") is None):
        return [Problem(where, "a browser step runs either `browser.suite` or `browser.test`")]
    return []


def _profiles() -> frozenset[str]:
    from bastion.scanning.engine.profiles import discover_profiles

    return frozenset(discover_profiles())


def _text(value: Any) -> str | None:
    text = attr.scalar(value).strip()
    return text or None


def build(kind: str, data: dict[str, Any], common: dict[str, Any]) -> VerificationStep:
    """The typed step of a checked one (``check`` found nothing)."""
    body: dict[str, Any] = data[kind]
    if common["label"] == kind:  # no label given: say what it does
        name = body.get("target") or body.get("suite") or body.get("test") or body.get("version")
        common = {**common, "label": f"{kind} {attr.scalar(name)}"[:300]}
    shared: dict[str, Any] = {
        "project": _text(body.get("project")),
        "soft_fail": attr.soft_fail(data.get("soft_fail")),
        "skip": attr.skip(data.get("skip")),
    }
    if kind == "scan":
        return ScanStep(
            **common,
            **shared,
            target=attr.scalar(body["target"]).strip(),
            profile=_text(body.get("profile")) or "lightning",
            fail_on=attr.scalar(body.get("fail_on", "high")).lower(),
        )
    if kind == "browser":
        return BrowserStep(
            **common,
            **shared,
            suite=_text(body.get("suite")),
            test=_text(body.get("test")),
            environment=_text(body.get("environment")),
        )
    return ReleaseStep(
        **common,
        **shared,
        version=attr.scalar(body["version"]).strip(),
        environment=_text(body.get("environment")) or "production",
    )
