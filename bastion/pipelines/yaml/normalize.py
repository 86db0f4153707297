"""From plain data to the typed pipeline: classify, check keys and schema, build, link.

Layers, as the reference recommends: (1) the JSON schema per step type, (2) a strict unknown-key
policy, (3) semantic checks (unique keys, dependencies exist, no cycles, ``if`` parses, matrix
size, concurrency needs a group), (4) policy: plugins are reported and never run.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bastion.pipelines.yaml import attributes as attr
from bastion.pipelines.yaml import schema, verification
from bastion.pipelines.yaml.errors import PipelineInvalid, Problem
from bastion.pipelines.yaml.expressions import ExpressionError, compile_condition
from bastion.pipelines.yaml.load import interpolate, load_document
from bastion.pipelines.yaml.notify import parse_notify
from bastion.pipelines.yaml.steps import (
    BlockStep,
    BrowserStep,
    CommandStep,
    Dependency,
    GroupStep,
    Pipeline,
    ReleaseStep,
    ScanStep,
    Step,
    StepSignature,
    TriggerBuild,
    TriggerStep,
    WaitStep,
)

DEFINITIONS = {
    "command": "commandStep",
    "wait": "waitStep",
    "block": "blockStep",
    "input": "inputStep",
    "trigger": "triggerStep",
    "group": "groupStep",
}
TYPE_ALIASES = {"script": "command", "command": "command", "commands": "command", "waiter": "wait"}
NESTED = {"command": "command", "script": "command", "wait": "wait", "block": "block",
          "input": "input", "trigger": "trigger"}  # fmt: skip
# Parsed and kept, but not acted on yet: said once per file, never silently dropped.
NOT_YET = {"if_changed", "image", "cache", "blocked_state"}
ROOT_EXTRA = {"common", "anchors", "aliases", "defaults", "definitions", "templates", "dag"}
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9_\-:${}.,]+$")
QUEUE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@dataclass
class _Context:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pipeline_agents: dict[str, str] = field(default_factory=dict)
    # The file's top-level ``secrets:`` (env var, secret name) pairs, for every command step.
    pipeline_secrets: tuple[tuple[str, str], ...] = ()
    default_priority: int | None = None
    counter: int = 0


@dataclass
class _Raw:
    """A step on its way: its type, attributes, place in the file and (for groups) children."""

    type: str
    data: dict[str, Any]
    where: str
    key: str = ""
    children: list[_Raw] = field(default_factory=list)


def classify(raw: Any) -> tuple[str, dict[str, Any]] | None:
    """(type, attributes) of one step in any of its accepted forms, or None when unknown."""
    if isinstance(raw, str):
        kind = TYPE_ALIASES.get(raw, raw)
        return (kind, {}) if kind in ("wait", "block", "input") else None
    if not isinstance(raw, dict):
        return None
    if len(raw) == 1:
        ((only, value),) = raw.items()
        if only in NESTED and isinstance(value, dict):
            return NESTED[only], dict(value)
    if "type" in raw:
        kind = TYPE_ALIASES.get(str(raw["type"]), str(raw["type"]))
        return (kind, dict(raw)) if kind in DEFINITIONS else None
    for kind in ("group", "trigger", "block", "input", "wait", *verification.KINDS):
        if kind in raw:
            return kind, dict(raw)
    return "command", dict(raw)


def _where(index: str, data: dict[str, Any]) -> str:
    name = data.get("key") or data.get("identifier") or data.get("id")
    label = data.get("label") or data.get("name")
    if name:
        return f'{index} (key "{name}")'
    if label:
        return f'{index} ("{str(label)[:40]}")'
    return index


def _check(kind: str, data: dict[str, Any], where: str, ctx: _Context) -> bool:
    if kind in verification.KINDS:  # Bastion's own step kinds
        found = verification.check(kind, data, where)
        ctx.problems.extend(found)
        return not found
    unknown = sorted(set(data) - schema.known_keys(DEFINITIONS[kind]))
    if unknown:
        ctx.problems.extend(
            Problem(where, f"unknown key `{key}` for a {kind} step") for key in unknown
        )
        return False
    # `notify` is checked by yaml/notify.py, which also takes `email` and `webhook` on steps.
    body = {
        k: v for k, v in data.items() if not (kind == "group" and k == "steps") and k != "notify"
    }
    if kind == "group":
        body["steps"] = [{"wait": None}]  # children are validated one by one
    errors = schema.step_errors(DEFINITIONS[kind], body)
    ctx.problems.extend(Problem(where, error) for error in errors)
    return not errors


def _collect(items: list[Any], prefix: str, ctx: _Context, nested: bool) -> list[_Raw]:
    result: list[_Raw] = []
    for i, item in enumerate(items):
        index = f"{prefix}[{i}]"
        found = classify(item)
        if found is None:
            ctx.problems.append(Problem(index, f"not a step: {str(item)[:60]!r}"))
            continue
        kind, data = found
        where = _where(index, data)
        if kind == "group" and nested:
            ctx.problems.append(Problem(where, "groups cannot be nested"))
            continue
        if not _check(kind, data, where, ctx):
            continue
        raw = _Raw(kind, data, where)
        if kind == "group":
            children = data.get("steps")
            if not isinstance(children, list) or not children:
                ctx.problems.append(Problem(where, "a group needs a non-empty list of `steps`"))
                continue
            raw.children = _collect(children, f"{index}.steps", ctx, nested=True)
        result.append(raw)
    return result


def _assign_keys(raws: list[_Raw], ctx: _Context, seen: dict[str, str]) -> None:
    for raw in raws:
        ctx.counter += 1
        user = raw.data.get("key") or raw.data.get("identifier") or raw.data.get("id")
        if user is not None:
            user = str(user)
            if not KEY_PATTERN.match(user) or len(user) > 100 or UUID_PATTERN.match(user):
                ctx.problems.append(Problem(raw.where, f"invalid key {user!r}"))
            elif user in seen:
                ctx.problems.append(
                    Problem(raw.where, f"key {user!r} is already used by {seen[user]}")
                )
            seen[user] = raw.where
            raw.key = user
        else:
            raw.key = f"step-{ctx.counter}"
        _assign_keys(raw.children, ctx, seen)


def _explicit(data: dict[str, Any]) -> tuple[Dependency, ...] | None:
    if "depends_on" not in data:
        return None
    value = data["depends_on"]
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    deps: list[Dependency] = []
    for item in items:
        if isinstance(item, dict):
            deps.append(Dependency(str(item.get("step")), attr.boolean(item.get("allow_failure"))))
        else:
            deps.append(Dependency(str(item)))
    return tuple(deps)


def _link(raws: list[_Raw], base: tuple[Dependency, ...]) -> dict[str, tuple[Dependency, ...]]:
    """Each step's needs: explicit ``depends_on``, or the barrier before it (wait/block)."""
    needs: dict[str, tuple[Dependency, ...]] = {}
    barrier = base
    since: list[str] = []
    for raw in raws:
        explicit = _explicit(raw.data)
        if raw.type in ("wait", "block"):
            lenient = raw.type == "wait" and attr.boolean(raw.data.get("continue_on_failure"))
            implied = tuple(Dependency(k, lenient) for k in since)
            implied += tuple(Dependency(d.key, lenient or d.allow_failure) for d in barrier)
            needs[raw.key] = explicit if explicit is not None else implied
            barrier, since = (Dependency(raw.key),), []
            continue
        own = explicit if explicit is not None else (() if raw.type == "input" else barrier)
        if raw.type == "group":
            needs.update(_link(raw.children, own))
            needs[raw.key] = tuple(Dependency(child.key) for child in raw.children)
        else:
            needs[raw.key] = own
        if raw.type != "input":
            since.append(raw.key)
    return needs


def _cycle(needs: dict[str, tuple[Dependency, ...]]) -> list[str] | None:
    state: dict[str, int] = {}
    for start in needs:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            edges = [d.key for d in needs.get(node, ()) if d.key in needs]
            if index < len(edges):
                stack.append((node, index + 1))
                nxt = edges[index]
                if state.get(nxt) == 1:
                    return [*path[path.index(nxt) :], nxt]
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def _common(
    raw: _Raw, needs: tuple[Dependency, ...], group: str | None, ctx: _Context
) -> dict[str, Any]:
    data = raw.data
    condition = None
    if data.get("if") is not None:
        try:
            condition = compile_condition(str(data["if"]))
        except ExpressionError as exc:
            ctx.problems.append(Problem(raw.where, f"`if` does not parse: {exc}"))
    if data.get("if") is not None and data.get("branches") is not None:
        ctx.problems.append(Problem(raw.where, "`if` and `branches` cannot be combined"))
    label = data.get("label") or data.get("name") or data.get(raw.type)
    if not isinstance(label, str) or not label:
        label = attr.command_text(data).split("\n", 1)[0] if raw.type == "command" else raw.type
    for key in sorted(NOT_YET & set(data)):
        ctx.warnings.append(f"{raw.where}: `{key}` is accepted but not acted on yet")
    return {
        "key": raw.key,
        "label": label[:300],
        "needs": needs,
        "allow_dependency_failure": attr.boolean(data.get("allow_dependency_failure")),
        "condition": condition,
        "branches": attr.string_list(data.get("branches")),
        "group": group,
        "user_key": raw.key if not raw.key.startswith("step-") else None,
        "notify": parse_notify(
            data.get("notify"), f"{raw.where}: notify", ctx.problems, ctx.warnings
        ),
    }


# Bounds of numbers that become database columns or job counts.
LIMITS = {
    "parallelism": (1, 500),
    "priority": (-1000, 1000),
    "concurrency": (1, 10_000),
    "timeout_in_minutes": (1, 43_200),
}


def _limits(raw: _Raw, ctx: _Context) -> None:
    for key, (low, high) in LIMITS.items():
        value = raw.data.get(key)
        if isinstance(value, int) and not low <= value <= high:
            ctx.problems.append(Problem(raw.where, f"`{key}` must be between {low} and {high}"))
    for item in raw.data.get("fields") or []:
        if isinstance(item, dict) and isinstance(item.get("format"), str):
            try:
                re.compile(item["format"])
            except re.error as exc:
                ctx.problems.append(Problem(raw.where, f"field format is not a regex: {exc}"))


def _command(raw: _Raw, common: dict[str, Any], ctx: _Context) -> CommandStep:
    data = raw.data
    plugins = attr.plugin_names(data.get("plugins"))
    if plugins:
        ctx.problems.append(
            Problem(
                raw.where,
                f"plugins are not run by Bastion (not allow-listed): {', '.join(plugins)}",
            )
        )
    command = attr.command_text(data)
    if not command.strip() and not plugins:
        ctx.problems.append(Problem(raw.where, "a command step needs `command` or `commands`"))
    _limits(raw, ctx)
    parsed_matrix = attr.matrix(data.get("matrix"))
    if parsed_matrix is not None:
        if data.get("parallelism") is not None:
            ctx.problems.append(Problem(raw.where, "`matrix` and `parallelism` cannot be combined"))
        if parsed_matrix.size() > attr.MATRIX_LIMIT:
            ctx.problems.append(
                Problem(raw.where, f"a matrix makes at most {attr.MATRIX_LIMIT} jobs")
            )
    if data.get("concurrency") is not None and not data.get("concurrency_group"):
        ctx.problems.append(Problem(raw.where, "`concurrency` needs a `concurrency_group`"))
    if data.get("concurrency_group") and data.get("concurrency") is None:
        ctx.problems.append(Problem(raw.where, "`concurrency_group` needs `concurrency`"))
    agents = {**ctx.pipeline_agents, **attr.agents_map(data.get("agents"))}
    queue = agents.get("queue")
    if queue is not None and "{{" not in queue and not QUEUE_PATTERN.match(queue):
        ctx.problems.append(Problem(raw.where, f"agents: {queue!r} is not a queue name"))
    timeout = data.get("timeout_in_minutes")
    priority = data.get("priority", ctx.default_priority)
    step_secrets, secret_problems = attr.secret_pairs(data.get("secrets"))
    ctx.problems.extend(Problem(raw.where, f"secrets: {p}") for p in secret_problems)
    # The pipeline's secrets, then the step's: a step's pair wins for the same env var.
    secrets = tuple({env: name for env, name in (*ctx.pipeline_secrets, *step_secrets)}.items())
    return CommandStep(
        **common,
        command=command,
        env=attr.env_map(data.get("env")),
        agents=agents,
        timeout_in_minutes=int(timeout) if timeout is not None else None,
        retry_automatic=attr.retry_rules(data.get("retry")),
        retry_manual=attr.manual_retry(data.get("retry")),
        soft_fail=attr.soft_fail(data.get("soft_fail")),
        parallelism=int(data["parallelism"]) if data.get("parallelism") is not None else None,
        matrix=parsed_matrix,
        artifact_paths=attr.string_list(data.get("artifact_paths"), ";"),
        concurrency=int(data["concurrency"]) if data.get("concurrency") is not None else None,
        concurrency_group=str(data["concurrency_group"]) if data.get("concurrency_group") else None,
        priority=int(priority) if priority is not None else None,
        skip=attr.skip(data.get("skip")),
        cancel_on_build_failing=attr.boolean(data.get("cancel_on_build_failing")),
        secrets=secrets,
        plugins=plugins,
        signature=_signature_value(data.get("signature")),
    )


def _signature_value(value: Any) -> StepSignature | None:
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return None
    return StepSignature(
        value=str(value["value"]),
        fields=attr.string_list(value.get("signed_fields")),
        agents=attr.agents_map(value.get("agents")),
        repository_url=attr.scalar(value.get("repository_url") or ""),
    )


def _step(
    raw: _Raw, needs: dict[str, tuple[Dependency, ...]], group: str | None, ctx: _Context
) -> Step:
    common = _common(raw, needs[raw.key], group, ctx)
    data = raw.data
    if raw.type == "command":
        return _command(raw, common, ctx)
    if raw.type in verification.KINDS:
        return verification.build(raw.type, data, common)
    if raw.type == "wait":
        return WaitStep(**common, continue_on_failure=attr.boolean(data.get("continue_on_failure")))
    if raw.type in ("block", "input"):
        _limits(raw, ctx)
        teams = attr.string_list(data.get("allowed_teams"))
        unknown = attr.unknown_teams(teams)
        if unknown:
            ctx.warnings.append(
                f"{raw.where}: `allowed_teams` names organization roles (owners, admins, "
                f"members); {', '.join(map(repr, unknown))} is none, so admins and owners "
                "unblock it"
            )
        return BlockStep(
            **common,
            prompt=attr.scalar(data.get("prompt")),
            fields=attr.fields(data.get("fields")),
            blocking=raw.type == "block",
            allowed_teams=teams,
        )
    if raw.type == "trigger":
        build = data.get("build") or {}
        return TriggerStep(
            **common,
            pipeline=attr.scalar(data.get("trigger")),
            is_async=attr.boolean(data.get("async")),
            build=TriggerBuild(
                branch=build.get("branch"),
                commit=build.get("commit"),
                message=build.get("message"),
                env=attr.env_map(build.get("env")),
                meta_data=attr.env_map(build.get("meta_data")),
            ),
            soft_fail=attr.soft_fail(data.get("soft_fail")),
            skip=attr.skip(data.get("skip")),
        )
    return GroupStep(
        **common, children=tuple(c.key for c in raw.children), skip=attr.skip(data.get("skip"))
    )


def _flatten(
    raws: list[_Raw], needs: dict[str, tuple[Dependency, ...]], ctx: _Context
) -> list[Step]:
    steps: list[Step] = []
    for raw in raws:
        group = _step(raw, needs, None, ctx)
        steps.append(group)
        for child in raw.children:
            step = _step(child, needs, raw.key, ctx)
            # A group's `if` and `skip` apply to each of its steps.
            if (
                isinstance(group, GroupStep)
                and group.condition is not None
                and step.condition is None
            ):
                step = replace(step, condition=group.condition)
            if (
                isinstance(group, GroupStep)
                and group.skip
                and isinstance(
                    step, CommandStep | TriggerStep | ScanStep | BrowserStep | ReleaseStep
                )
            ):
                step = replace(step, skip=step.skip or group.skip)
            steps.append(step)
    return steps


def _root(document: dict[str, Any], ctx: _Context) -> None:
    for key in document:
        if key == "steps" or str(key).startswith(("x-", ".")):
            continue
        if key in schema.root_keys():
            for error in schema.root_errors(key, document[key]):
                ctx.problems.append(Problem(str(key), error))
        elif key not in ROOT_EXTRA:
            ctx.problems.append(Problem(str(key), f"unknown top-level key `{key}`"))


def parse_pipeline(text: str, env: Mapping[str, str] | None = None) -> Pipeline:
    """Parse, interpolate, validate and normalize a pipeline file; raises ``PipelineInvalid``."""
    document = load_document(text)
    base: dict[str, str] = env if isinstance(env, dict) else dict(env or {})
    pipeline_env = attr.env_map(interpolate(document.get("env") or {}, base, "env"))
    document = interpolate(
        {k: v for k, v in document.items() if k != "env"}, ChainMap(pipeline_env, base)
    )
    ctx = _Context()
    _root({**document, "env": pipeline_env}, ctx)
    ctx.pipeline_agents = attr.agents_map(document.get("agents"))
    ctx.pipeline_secrets, secret_problems = attr.secret_pairs(document.get("secrets"))
    ctx.problems.extend(Problem("secrets", p) for p in secret_problems)
    if isinstance(document.get("priority"), int):
        ctx.default_priority = document["priority"]
    steps_raw = document.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise PipelineInvalid(
            [*ctx.problems, Problem("steps", "a pipeline needs a non-empty list of steps")]
        )
    raws = _collect(steps_raw, "steps", ctx, nested=False)
    if ctx.problems:
        raise PipelineInvalid(ctx.problems)
    _assign_keys(raws, ctx, {})
    needs = _link(raws, ())
    known = set(needs)
    for raw in _walk(raws):
        for dep in _explicit(raw.data) or ():
            if dep.key not in known:
                ctx.problems.append(
                    Problem(raw.where, f"depends_on names an unknown step {dep.key!r}")
                )
    cycle = _cycle(needs)
    if cycle is not None:
        ctx.problems.append(Problem("steps", f"depends_on makes a cycle: {' -> '.join(cycle)}"))
    steps = _flatten(raws, needs, ctx)
    notify = parse_notify(document.get("notify"), "notify", ctx.problems, ctx.warnings)
    if ctx.problems:
        raise PipelineInvalid(ctx.problems)
    return Pipeline(
        steps=tuple(steps),
        env=pipeline_env,
        agents=ctx.pipeline_agents,
        notify=notify,
        warnings=tuple(dict.fromkeys(ctx.warnings)),
    )


def _walk(raws: list[_Raw]) -> list[_Raw]:
    result: list[_Raw] = []
    for raw in raws:
        result.append(raw)
        result.extend(raw.children)
    return result
