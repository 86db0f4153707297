"""Attribute parsers: the many accepted spellings of each Buildkite attribute, to one type."""

from __future__ import annotations

import re
from typing import Any

from bastion.pipelines.yaml.steps import (
    Field,
    ManualRetry,
    Matrix,
    MatrixAdjustment,
    RetryRule,
    SelectField,
    SelectOption,
    SoftFail,
    TextField,
)

MATRIX_LIMIT = 50
DEFAULT_RETRY_LIMIT = 2


def boolean(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def env_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): scalar(v) for k, v in value.items()}


SECRET_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")


def secret_pairs(value: Any) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """A step's ``secrets:`` (names, or ``ENV_VAR: SECRET_NAME``) as (env, secret) pairs, and
    what is wrong with it."""
    if value is None:
        return (), []
    if isinstance(value, list):
        items = [(scalar(v), scalar(v)) for v in value]
    elif isinstance(value, dict):
        items = [(str(k), scalar(v)) for k, v in value.items()]
    else:
        return (), ["`secrets` is a list of secret names or a mapping ENV_VAR: SECRET_NAME"]
    problems = [
        f"{name!r} is not a secret name (like DEPLOY_TOKEN)"
        for _, name in items
        if not SECRET_NAME.match(name)
    ]
    problems += [f"{env!r} is not a variable name" for env, _ in items if not ENV_NAME.match(env)]
    return tuple(sorted(set(items))), problems


def agents_map(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        pairs = [str(item).partition("=") for item in value]
        return {key.strip(): val.strip() for key, _, val in pairs if key.strip()}
    return {}


def string_list(value: Any, separator: str | None = None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(scalar(v) for v in value if v is not None)
    text = scalar(value)
    parts = text.split(separator) if separator else text.split()
    return tuple(p.strip() for p in parts if p.strip())


def command_text(step: dict[str, Any]) -> str:
    value = step.get("commands", step.get("command"))
    if isinstance(value, list):
        return "\n".join(scalar(v) for v in value)
    return scalar(value)


def _exit_statuses(value: Any) -> tuple[int, ...] | None:
    if value is None or value == "*":
        return None
    if isinstance(value, list):
        return tuple(int(v) for v in value)
    return (int(value),)


def retry_rules(retry: Any) -> tuple[RetryRule, ...]:
    automatic = retry.get("automatic") if isinstance(retry, dict) else None
    if automatic is None or automatic is False or automatic == "false":
        return ()
    if automatic is True or automatic == "true":
        return (RetryRule(None, None, None, DEFAULT_RETRY_LIMIT),)
    rules = automatic if isinstance(automatic, list) else [automatic]
    return tuple(
        RetryRule(
            exit_statuses=_exit_statuses(rule.get("exit_status")),
            signal_reason=rule.get("signal_reason"),
            signal=rule.get("signal"),
            limit=int(rule.get("limit", DEFAULT_RETRY_LIMIT)),
        )
        for rule in rules
        if isinstance(rule, dict)
    )


def manual_retry(retry: Any) -> ManualRetry:
    manual = retry.get("manual") if isinstance(retry, dict) else None
    if manual is None:
        return ManualRetry()
    if not isinstance(manual, dict):
        return ManualRetry(allowed=boolean(manual, True))
    return ManualRetry(
        allowed=boolean(manual.get("allowed"), True),
        permit_on_passed=boolean(manual.get("permit_on_passed")),
        reason=scalar(manual.get("reason")),
    )


def soft_fail(value: Any) -> SoftFail:
    if value is None:
        return SoftFail()
    if not isinstance(value, list):
        return SoftFail(any=boolean(value))
    statuses: list[int] = []
    for item in value:
        status = item.get("exit_status") if isinstance(item, dict) else None
        if status == "*":
            return SoftFail(any=True)
        if status is not None:
            statuses.append(int(status))
    return SoftFail(exit_statuses=tuple(statuses))


def skip(value: Any) -> str | None:
    if value is None or value is False or value == "false":
        return None
    if value is True or value == "true":
        return "skipped"
    return scalar(value)


def matrix(value: Any) -> Matrix | None:
    if value is None:
        return None
    if isinstance(value, list):
        return Matrix(dimensions=(("", tuple(scalar(v) for v in value)),))
    setup = value.get("setup")
    if isinstance(setup, list):
        dimensions: tuple[tuple[str, tuple[str, ...]], ...] = (
            ("", tuple(scalar(v) for v in setup)),
        )
    else:
        dimensions = tuple(
            (
                str(name),
                tuple(scalar(v) for v in (values if isinstance(values, list) else [values])),
            )
            for name, values in (setup or {}).items()
        )
    adjustments = []
    for item in value.get("adjustments") or []:
        with_ = item.get("with")
        if isinstance(with_, dict):
            pairs = tuple((str(k), scalar(v)) for k, v in with_.items())
        else:
            first = with_[0] if isinstance(with_, list) and with_ else with_
            pairs = (("", scalar(first)),)
        adjustments.append(
            MatrixAdjustment(
                with_=pairs,
                skip=skip(item.get("skip")) is not None,
                soft_fail=soft_fail(item["soft_fail"]) if "soft_fail" in item else None,
            )
        )
    return Matrix(dimensions=dimensions, adjustments=tuple(adjustments))


def fields(value: Any) -> tuple[Field, ...]:
    result: list[Field] = []
    for item in value or []:
        if not isinstance(item, dict):
            continue
        required = boolean(item.get("required"), True)
        if "select" in item:
            default = item.get("default")
            result.append(
                SelectField(
                    key=scalar(item.get("key")),
                    select=scalar(item.get("select")),
                    options=tuple(
                        SelectOption(label=scalar(o.get("label")), value=scalar(o.get("value")))
                        for o in item.get("options") or []
                        if isinstance(o, dict)
                    ),
                    hint=scalar(item.get("hint")),
                    required=required,
                    multiple=boolean(item.get("multiple")),
                    default=string_list(default)
                    if isinstance(default, list)
                    else ((scalar(default),) if default is not None else ()),
                )
            )
        else:
            result.append(
                TextField(
                    key=scalar(item.get("key")),
                    text=scalar(item.get("text")),
                    hint=scalar(item.get("hint")),
                    required=required,
                    default=scalar(item["default"]) if item.get("default") is not None else None,
                    format=scalar(item["format"]) if item.get("format") else None,
                )
            )
    return tuple(result)


# Bastion has no teams: a block step's ``allowed_teams`` names organization roles. A name that
# is no role matches nobody, and the step falls back to the narrowest group that may always act
# on the pipeline (its admins): a restriction the file asked for is never dropped.
TEAM_ROLES = {"owner": "owner", "owners": "owner", "admin": "admin", "admins": "admin",
              "member": "member", "members": "member"}  # fmt: skip
ROLE_ORDER = ("member", "admin", "owner")


def unblock_role(teams: tuple[str, ...]) -> str | None:
    """The least organization role that may unblock a step with these ``allowed_teams`` (None:
    any member); a name that is no role counts as admins."""
    if not teams:
        return None
    roles = [TEAM_ROLES.get(team.strip().lower(), "admin") for team in teams]
    return min(roles, key=ROLE_ORDER.index)


def unknown_teams(teams: tuple[str, ...]) -> list[str]:
    return [team for team in teams if team.strip().lower() not in TEAM_ROLES]


def plugin_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, dict):
        return tuple(str(k) for k in value)
    names: list[str] = []
    for item in value or []:
        if isinstance(item, dict):
            names.extend(str(k) for k in item)
        else:
            names.append(scalar(item))
    return tuple(names)
