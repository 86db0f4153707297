"""``notify:`` at the pipeline and step level, in Buildkite's forms.

Bastion sends ``email: addr``, ``webhook: url`` and ``slack: "#channel"`` / ``slack: url`` /
``slack: {channels: [...], message: ...}``, each with an optional ``if:`` over the build (e.g.
``build.state == "failed"``). Buildkite's other integrations (``github_commit_status``,
``github_check``, ``basecamp_campfire``, ``pagerduty_change_event``) are kept by name as
unsupported, reported when the file is stored and on each build that would have sent them —
never dropped silently. Steps take the same forms as the pipeline (a superset of Buildkite's
step-level ``notify``, which has no ``email`` or ``webhook``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from bastion.pipelines.yaml.errors import Problem
from bastion.pipelines.yaml.expressions import ExpressionError, compile_condition
from bastion.pipelines.yaml.steps import Notification

SENT = ("email", "webhook", "slack")
UNSUPPORTED = (
    "github_commit_status",
    "github_check",
    "basecamp_campfire",
    "pagerduty_change_event",
)
MAX_NOTIFICATIONS = 20
MAX_SLACK_CHANNELS = 20
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_NAME = re.compile(r"^[#@][\w.\-]{1,80}$")


def _is_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _targets(kind: str, value: Any, where: str, problems: list[Problem]) -> tuple[str, ...]:
    """The addresses, URLs or channel names one notification goes to ("" when interpolated
    to nothing: skipped, and reported on the build)."""
    if kind == "slack" and isinstance(value, dict):
        channels = value.get("channels")
        if not isinstance(channels, list) or not channels:
            problems.append(Problem(where, "slack: `channels` must be a non-empty list"))
            return ()
        values = [str(c).strip() for c in channels[:MAX_SLACK_CHANNELS]]
    elif isinstance(value, str):
        values = [value.strip()]
    else:
        problems.append(Problem(where, f"{kind}: expected a string"))
        return ()
    for target in values:
        if not target:
            continue
        if kind == "email" and not _EMAIL.match(target):
            problems.append(Problem(where, f"email: {target[:100]!r} is not an email address"))
        elif kind == "webhook" and not _is_url(target):
            problems.append(Problem(where, f"webhook: {target[:100]!r} is not an http(s) URL"))
        elif kind == "slack" and not (_is_url(target) or _SLACK_NAME.match(target)):
            problems.append(
                Problem(where, f'slack: {target[:100]!r} is neither "#channel" nor a hook URL')
            )
    return tuple(values)


def _one(item: Any, where: str, problems: list[Problem]) -> Notification | None:
    if isinstance(item, str):
        if item in UNSUPPORTED:
            return Notification(kind=item, supported=False)
        problems.append(Problem(where, f"unknown notification {item[:60]!r}"))
        return None
    if not isinstance(item, dict):
        problems.append(Problem(where, "a notification is a string or a mapping"))
        return None
    kinds = [k for k in item if k != "if"]
    if len(kinds) != 1:
        problems.append(Problem(where, "a notification names exactly one of " + ", ".join(SENT)))
        return None
    kind = str(kinds[0])
    condition = None
    if item.get("if") is not None:
        try:
            condition = compile_condition(str(item["if"]))
        except ExpressionError as exc:
            problems.append(Problem(where, f"`if` does not parse: {exc}"))
    if kind in UNSUPPORTED:
        return Notification(kind=kind, condition=condition, supported=False)
    if kind not in SENT:
        problems.append(Problem(where, f"unknown notification `{kind}`"))
        return None
    value = item[kind]
    message = ""
    if kind == "slack" and isinstance(value, dict):
        message = str(value.get("message") or "")[:1000]
    targets = _targets(kind, value, where, problems)
    return Notification(kind=kind, targets=targets, condition=condition, message=message)


def parse_notify(
    value: Any, where: str, problems: list[Problem], warnings: list[str]
) -> tuple[Notification, ...]:
    """The notifications of ``value`` (a pipeline's or a step's ``notify``); problems and
    warnings (unsupported integrations, by name) are appended to the lists given."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(Problem(where, "`notify` must be a list"))
        return ()
    if len(value) > MAX_NOTIFICATIONS:
        problems.append(Problem(where, f"`notify` lists at most {MAX_NOTIFICATIONS} entries"))
        return ()
    result = []
    for index, item in enumerate(value):
        found = _one(item, f"{where}[{index}]", problems)
        if found is None:
            continue
        if not found.supported:
            warnings.append(
                f"{where}[{index}]: `{found.kind}` notifications are not supported by Bastion "
                "and are not sent"
            )
        result.append(found)
    return tuple(result)
