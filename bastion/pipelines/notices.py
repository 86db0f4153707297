"""Build and step notifications: ``pipelines.build.<state>`` (passed, failed, canceled, not_run)
and ``pipelines.step.<state>`` through core notifications, sent after commit.

A finished build goes to the organization's channels subscribed to its topic, and to the
pipeline file's own ``notify:`` entries (and a finished step to its step's) whose ``if:`` holds:
``email`` and ``webhook`` targets and ``slack`` hook URLs become channels the pipeline manages
(named ``pipeline notify <kind> <digest>``, subscribed to no topic, so an administrator can see
and disable them on the notifications page); ``slack: "#ops"`` names a Slack-compatible channel
of the organization. What cannot be sent — an integration Bastion does not have, a channel name
nobody configured, a target that interpolated to nothing — is written on the build as a
``notify`` annotation, never dropped silently.

Both functions are called by the build scheduler inside the transaction that finished the build
or step, so a rolled-back advance announces nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from bastion.core import notifications
from bastion.core.access import Principal
from bastion.core.models import NotificationChannel
from bastion.core.notifications import Message, absolute_url
from bastion.pipelines import environment
from bastion.pipelines.models import (
    STEP_FINISHED,
    Annotation,
    AnnotationStyle,
    Build,
    BuildStep,
    StepState,
)
from bastion.pipelines.yaml import ExpressionError, Pipeline
from bastion.pipelines.yaml.steps import Notification

log = logging.getLogger(__name__)
MANAGED_PREFIX = "pipeline notify"
# Managed channels are addressed directly, never through topic routing: this topic is not sent.
MANAGED_TOPIC = "pipelines.notify.direct"
ANNOTATION_CONTEXT = "notify"
MAX_ANNOTATION_LINES = 50
Kind = NotificationChannel.Kind


def build_url(build: Build) -> str:
    pipeline = build.pipeline
    return absolute_url(
        f"/o/{pipeline.organization.slug}/pipelines/{pipeline.slug}/builds/{build.number}/"
    )


def _build_message(build: Build) -> Message:
    pipeline = build.pipeline
    failed = list(
        BuildStep.objects.filter(
            build=build, state__in=[StepState.FAILED, StepState.BROKEN, StepState.CANCELED]
        ).values_list("key", flat=True)[:20]
    )
    subject = f"Build {pipeline.slug}#{build.number} {build.get_state_display().lower()}"
    lines = [
        f"Pipeline: {pipeline.name} ({pipeline.organization.slug}/{pipeline.slug})",
        f"Branch: {build.branch}  Commit: {build.commit}",
        f"Source: {build.source}  By: {build.created_by}",
    ]
    if build.message:
        lines.append(f"Message: {build.message[:500]}")
    if failed:
        lines.append("Failed steps: " + ", ".join(failed))
    return Message(
        topic=f"pipelines.build.{build.state}",
        subject=f"{subject}: {build.message[:120]}" if build.message else subject,
        text="\n".join(lines),
        url=build_url(build),
        data={
            "pipeline": pipeline.slug,
            "build": build.number,
            "state": str(build.state),
            "branch": build.branch,
            "commit": build.commit,
            "source": build.source,
            "failed_steps": failed,
        },
    )


def _step_message(build: Build, row: BuildStep) -> Message:
    pipeline = build.pipeline
    state = row.get_state_display().lower()
    return Message(
        topic=f"pipelines.step.{row.state}",
        subject=f"Step {row.label or row.key} of {pipeline.slug}#{build.number} {state}",
        text=f"Pipeline: {pipeline.name}\nBranch: {build.branch}  Commit: {build.commit}",
        url=build_url(build),
        data={
            "pipeline": pipeline.slug,
            "build": build.number,
            "step": row.key,
            "state": str(row.state),
            "branch": build.branch,
            "commit": build.commit,
        },
    )


def _managed_channel(build: Build, kind: str, target: str) -> NotificationChannel:
    """The channel the pipeline manages for one email address or hook URL (made once, audited
    as the build's scheduler; two builds racing to make it share the first one's)."""
    organization = build.organization
    digest = hashlib.sha256(f"{kind}\n{target}".encode()).hexdigest()[:16]
    name = f"{MANAGED_PREFIX} {kind} {digest}"
    found = NotificationChannel.objects.filter(organization=organization, name=name).first()
    if found is not None:
        return found
    principal = Principal.system(f"pipeline:{build.pipeline.slug}#{build.number}", organization)
    try:
        with transaction.atomic():
            return notifications.create_channel(
                principal, organization, name=name, kind=kind, target=target,
                topics=[MANAGED_TOPIC],
            )  # fmt: skip
    except IntegrityError:
        return NotificationChannel.objects.get(organization=organization, name=name)


def _slack_channel(build: Build, name: str) -> NotificationChannel | None:
    bare = name.lstrip("#@")
    return (
        NotificationChannel.objects.filter(
            organization=build.organization, kind=Kind.SLACK, name__in=[name, bare]
        )
        .order_by("pk")
        .first()
    )


def _channels(build: Build, item: Notification, problems: list[str]) -> list[NotificationChannel]:
    found: list[NotificationChannel] = []
    for target in item.targets:
        if not target:
            problems.append(f"`{item.kind}` has an empty target (a variable set to nothing?)")
            continue
        if item.kind == "slack" and target.startswith(("#", "@")):
            channel = _slack_channel(build, target)
            if channel is None:
                problems.append(
                    f"slack {target}: no Slack-compatible channel of that name in the "
                    "organization (Settings → Notifications)"
                )
                continue
            found.append(channel)
            continue
        kind = {"email": Kind.EMAIL, "webhook": Kind.WEBHOOK, "slack": Kind.SLACK}[item.kind]
        try:
            found.append(_managed_channel(build, kind, target))
        except ValidationError as exc:
            problems.append(f"{item.kind}: " + " ".join(exc.messages))
    return found


def _send(
    build: Build,
    entries: Iterable[Notification],
    message: Message,
    context: dict[str, Any],
    where: str,
    already: set[int],
) -> None:
    problems: list[str] = []
    targets: dict[int, NotificationChannel] = {}
    for item in entries:
        try:
            applies = item.applies(context)
        except ExpressionError as exc:
            problems.append(f"`{item.kind}`: its `if` cannot be evaluated: {exc}")
            continue
        if not applies:
            continue
        if not item.supported:
            problems.append(f"`{item.kind}` notifications are not supported by Bastion")
            continue
        for channel in _channels(build, item, problems):
            if channel.pk not in already and channel.enabled:
                targets[channel.pk] = channel
    if targets:
        slack_text = next((i.message for i in entries if i.kind == "slack" and i.message), "")
        text = f"{slack_text}\n\n{message.text}" if slack_text else message.text
        notifications.notify(
            build.organization,
            Message(message.topic, message.subject, text, message.url, message.data),
            channels=targets.values(),
        )
        already.update(targets)
    if problems:
        _annotate(build, [f"{where}: {p}" for p in problems])


def _annotate(build: Build, lines: list[str]) -> None:
    annotation = Annotation.objects.filter(build=build, context=ANNOTATION_CONTEXT).first()
    previous = annotation.body.splitlines() if annotation is not None else []
    fresh = [f"- {line}" for line in lines if f"- {line}" not in previous]
    if not fresh:
        return
    header = ["**Notifications not sent**"] if annotation is None else []
    body = "\n".join([*header, *previous, *fresh][: MAX_ANNOTATION_LINES + 1])
    if annotation is None:
        Annotation.objects.create(
            build=build, context=ANNOTATION_CONTEXT, style=AnnotationStyle.WARNING, body=body
        )
    else:
        annotation.body = body
        annotation.updated_at = timezone.now()
        annotation.save(update_fields=["body", "updated_at"])
    log.warning("build %s: notifications not sent: %s", build.pk, "; ".join(lines))


def _context(build: Build, row: BuildStep | None = None) -> dict[str, Any]:
    context = environment.condition_context(build) | {"build.state": str(build.state)}
    if row is not None:
        context |= {"step.key": row.key, "step.state": str(row.state), "step.outcome": row.state}
    return context


def build_finished(build: Build, definition: Pipeline) -> None:
    """Announce a finished build: subscribed channels, then the file's ``notify:``."""
    message = _build_message(build)
    deliveries = notifications.notify(build.organization, message)
    already = {d.channel_id for d in deliveries if d.channel_id is not None}
    _send(build, definition.notify, message, _context(build), "notify", already)


def steps_finished(build: Build, definition: Pipeline, rows: Iterable[BuildStep]) -> None:
    """Announce steps that just finished to their own ``notify:`` entries."""
    for row in rows:
        if row.state not in STEP_FINISHED or row.started_at is None:
            continue  # skipped, or never ran (a dependency failed, the build was canceled)
        try:
            step = definition.step(row.key)
        except KeyError:
            continue
        if not step.notify:
            continue
        where = f"step {row.key}: notify"
        _send(build, step.notify, _step_message(build, row), _context(build, row), where, set())
