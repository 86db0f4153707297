"""Notifications: one way for every module to tell people that something happened.

A module calls :func:`notify` inside the transaction of the action that caused the event. The
matching channels of the organization get a :class:`NotificationDelivery` row in that same
transaction (so nothing is announced for work that rolled back, and nothing acknowledged is
lost), and each row is sent after commit by a Django task (:mod:`bastion.core.tasks`). Failed
sends are retried by the scheduler with back-off, up to ``MAX_ATTEMPTS``.

Rate limiting has two layers, both visible as ``suppressed`` on the deliveries page:
- a ``dedupe_key`` + ``window``: the same key on the same channel within the window is folded into
  the first delivery's ``suppressed_count`` (an error storm yields one alert, not thousands);
- a per-channel ceiling of ``BASTION_NOTIFY_MAX_PER_MINUTE`` deliveries, past which new messages
  are recorded as suppressed instead of sent (a storm of distinct events cannot flood an inbox).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from bastion.core import audit, crypto
from bastion.core.access import Principal, get_scoped_or_404, require_role
from bastion.core.models import (
    NotificationChannel,
    NotificationDelivery,
    Organization,
    Project,
    Role,
    User,
)

MAX_ATTEMPTS = 3
RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=5))
SEND_TIMEOUT_S = 10.0
SIGNATURE_HEADER = "X-Bastion-Signature"
Kind = NotificationChannel.Kind
Status = NotificationDelivery.Status


@dataclass(frozen=True)
class Message:
    """What happened, in words for people (subject, text, link) and in facts for machines (data)."""

    topic: str
    subject: str
    text: str = ""
    url: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def absolute_url(path: str) -> str:
    """A link into Bastion for a message, from ``BASTION_PUBLIC_URL``."""
    if path.startswith(("http://", "https://")):
        return path
    return settings.CONFIG.public_url + "/" + path.lstrip("/")


def max_per_minute() -> int:
    return int(settings.CONFIG.notify_max_per_minute)


# --- sending a message ------------------------------------------------------------------------


def channels_for_message(
    organization: Organization, topic: str, project: Project | None
) -> list[NotificationChannel]:
    """The organization's enabled channels subscribed to ``topic`` (and to ``project``, if any)."""
    matching = []
    channels = NotificationChannel.objects.filter(organization=organization, enabled=True)
    for channel in channels.prefetch_related("projects"):
        if not any(fnmatch.fnmatchcase(topic, pattern) for pattern in channel.topics):
            continue
        scoped_to = {p.pk for p in channel.projects.all()}
        if scoped_to and (project is None or project.pk not in scoped_to):
            continue
        matching.append(channel)
    return matching


def notify(
    organization: Organization,
    message: Message,
    *,
    project: Project | None = None,
    channels: Iterable[NotificationChannel] | None = None,
    dedupe_key: str = "",
    window: timedelta | None = None,
) -> list[NotificationDelivery]:
    """Queue ``message`` for the matching channels; returns the deliveries written (sent or not)."""
    now = timezone.now()
    targets = (
        list(channels)
        if channels is not None
        else channels_for_message(organization, message.topic, project)
    )
    written = []
    with transaction.atomic():
        for channel in targets:
            if (
                dedupe_key
                and window is not None
                and _fold_into_recent(channel, dedupe_key, now - window)
            ):
                continue
            recent = NotificationDelivery.objects.filter(
                channel=channel, created_at__gte=now - timedelta(minutes=1)
            ).exclude(status=Status.SUPPRESSED)
            written.append(
                _write_delivery(organization, message, dedupe_key, now, recent, channel=channel)
            )
    return written


def notify_user(
    organization: Organization,
    user: User,
    message: Message,
    *,
    dedupe_key: str = "",
    window: timedelta | None = None,
) -> NotificationDelivery | None:
    """Queue ``message`` as an email to one person (a member of ``organization``), sent after
    commit like a channel's message, with the same dedupe window and per-minute ceiling (per
    person). None when the user has no address or the message was folded into a recent one."""
    if not user.email or not user.is_active:
        return None
    now = timezone.now()
    with transaction.atomic():
        if dedupe_key and window is not None:
            folded = (
                NotificationDelivery.objects.filter(
                    recipient=user, dedupe_key=dedupe_key[:200], created_at__gte=now - window
                )
                .exclude(status=Status.SUPPRESSED)
                .update(suppressed_count=F("suppressed_count") + 1)
            )
            if folded:
                return None
        recent = NotificationDelivery.objects.filter(
            recipient=user, created_at__gte=now - timedelta(minutes=1)
        ).exclude(status=Status.SUPPRESSED)
        return _write_delivery(organization, message, dedupe_key, now, recent, recipient=user)


def _write_delivery(
    organization: Organization,
    message: Message,
    dedupe_key: str,
    now: datetime,
    recent: QuerySet[NotificationDelivery],
    *,
    channel: NotificationChannel | None = None,
    recipient: User | None = None,
) -> NotificationDelivery:
    """One delivery row (suppressed past the per-minute ceiling), sent after commit."""
    over_limit = recent.count() >= max_per_minute()
    delivery = NotificationDelivery.objects.create(
        organization=organization,
        channel=channel,
        recipient=recipient,
        topic=message.topic[:100],
        subject=message.subject[:300],
        text=message.text,
        url=message.url[:1000],
        data=message.data,
        dedupe_key=dedupe_key[:200],
        status=Status.SUPPRESSED if over_limit else Status.PENDING,
        error="over the per-minute limit" if over_limit else "",
        created_at=now,
    )
    if not over_limit:
        _send_after_commit(delivery.pk)
    return delivery


def _fold_into_recent(channel: NotificationChannel, dedupe_key: str, since: datetime) -> bool:
    folded = (
        NotificationDelivery.objects.filter(
            channel=channel, dedupe_key=dedupe_key[:200], created_at__gte=since
        )
        .exclude(status=Status.SUPPRESSED)
        .update(suppressed_count=F("suppressed_count") + 1)
    )
    return folded > 0


def _send_after_commit(delivery_id: int) -> None:
    from bastion.core.tasks import deliver_notification

    transaction.on_commit(lambda: deliver_notification.enqueue(delivery_id))


# --- delivering one ---------------------------------------------------------------------------


class DeliveryError(Exception):
    """A channel refused or could not be reached; the message is kept and retried."""


def deliver(delivery_id: int) -> NotificationDelivery | None:
    """Send one pending (or retryable) delivery and record the outcome."""
    with transaction.atomic():
        delivery = (
            NotificationDelivery.objects.select_for_update(of=("self",))
            .select_related("channel", "organization", "recipient")
            .filter(pk=delivery_id, status__in=[Status.PENDING, Status.FAILED])
            .first()
        )
        if delivery is None or delivery.attempts >= MAX_ATTEMPTS:
            return delivery
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    try:
        if delivery.channel is not None:
            _SENDERS[delivery.channel.kind](delivery)
        else:
            _send_email_to_recipient(delivery)
    except DeliveryError as exc:
        delivery.status = Status.FAILED
        delivery.error = str(exc)[:2000]
        backoff = RETRY_BACKOFF[min(delivery.attempts - 1, len(RETRY_BACKOFF) - 1)]
        delivery.next_attempt_at = (
            timezone.now() + backoff if delivery.attempts < MAX_ATTEMPTS else None
        )
    else:
        delivery.status = Status.SENT
        delivery.error = ""
        delivery.sent_at = timezone.now()
        delivery.next_attempt_at = None
    delivery.save(update_fields=["status", "error", "sent_at", "next_attempt_at"])
    return delivery


def retry_failed(now: datetime | None = None) -> int:
    """Re-send failed deliveries whose back-off has passed (called by the scheduler's tick)."""
    now = now or timezone.now()
    due = list(
        NotificationDelivery.objects.filter(
            status=Status.FAILED, attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=now
        ).values_list("pk", flat=True)[:100]
    )
    for delivery_id in due:
        deliver(delivery_id)
    return len(due)


def webhook_body(delivery: NotificationDelivery) -> bytes:
    payload = {
        "id": delivery.pk,
        "topic": delivery.topic,
        "organization": delivery.organization.slug,
        "subject": delivery.subject,
        "text": delivery.text,
        "url": delivery.url,
        "data": delivery.data,
        "suppressed_count": delivery.suppressed_count,
        "created_at": delivery.created_at.isoformat(),
        "timestamp": int(time.time()),
    }
    return json.dumps(payload, sort_keys=True, default=str).encode()


def sign(secret: str, body: bytes) -> str:
    """The value of X-Bastion-Signature: ``sha256=`` + HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_email(delivery: NotificationDelivery) -> None:
    assert delivery.channel is not None
    _mail(delivery, crypto.decrypt(delivery.channel.target_encrypted).split(","))


def _send_email_to_recipient(delivery: NotificationDelivery) -> None:
    """A personal message goes to the recipient's address as it is when it is sent."""
    user = delivery.recipient
    if user is None or not user.email:
        raise DeliveryError("the recipient has no email address")
    _mail(delivery, [user.email])


def _mail(delivery: NotificationDelivery, recipients: list[str]) -> None:
    body = delivery.text
    if delivery.url:
        body = f"{body}\n\n{delivery.url}" if body else delivery.url
    email = EmailMessage(
        subject=f"[Bastion] {delivery.subject}",
        body=body,
        to=[r.strip() for r in recipients if r.strip()],
        headers={"X-Bastion-Topic": delivery.topic},
    )
    try:
        email.send(fail_silently=False)
    except (OSError, ValueError) as exc:
        raise DeliveryError(f"email not sent: {exc}") from exc


def _send_webhook(delivery: NotificationDelivery) -> None:
    body = webhook_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "X-Bastion-Event": delivery.topic,
        "X-Bastion-Delivery": str(delivery.pk),
    }
    assert delivery.channel is not None
    secret = delivery.channel.secret_encrypted
    if secret:
        headers[SIGNATURE_HEADER] = sign(crypto.decrypt(secret), body)
    _post(crypto.decrypt(delivery.channel.target_encrypted), body, headers)


def _send_slack(delivery: NotificationDelivery) -> None:
    assert delivery.channel is not None
    lines = [f"*{delivery.subject}*"]
    if delivery.text:
        lines.append(delivery.text)
    if delivery.url:
        lines.append(f"<{delivery.url}|Open in Bastion>")
    body = json.dumps({"text": "\n".join(lines)}).encode()
    _post(
        crypto.decrypt(delivery.channel.target_encrypted),
        body,
        {"Content-Type": "application/json"},
    )


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    check_webhook_address(url)
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"User-Agent": "Bastion-Notifications/1", **headers},
            timeout=SEND_TIMEOUT_S,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"the receiver answered HTTP {response.status_code}")


_SENDERS: dict[str, Callable[[NotificationDelivery], None]] = {
    Kind.EMAIL: _send_email,
    Kind.WEBHOOK: _send_webhook,
    Kind.SLACK: _send_slack,
}


def check_webhook_address(url: str) -> None:
    """Refuse hooks that point at link-local / cloud-metadata addresses (a classic SSRF target).

    Loopback and private networks stay allowed: self-hosted chat servers live there.
    """
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve {host!r}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            raise DeliveryError(f"{host} resolves to {address}, which notifications never call")


# --- managing channels ------------------------------------------------------------------------


def _validate_target(kind: str, target: str) -> str:
    """Normalize the target and return the redacted hint shown on pages."""
    if kind == Kind.EMAIL:
        addresses = [a.strip() for a in target.split(",") if a.strip()]
        if not addresses:
            raise ValidationError({"target": ["Give at least one email address."]})
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError as exc:
                raise ValidationError({"target": [f"Not an email address: {address!r}."]}) from exc
        return ", ".join(addresses)[:300]
    if kind in (Kind.WEBHOOK, Kind.SLACK):
        parts = urlsplit(target)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValidationError({"target": ["Give an http:// or https:// URL."]})
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"
    raise ValidationError({"kind": [f"Unknown channel kind {kind!r}."]})


def _validate_topics(topics: list[str]) -> list[str]:
    cleaned = [t.strip() for t in topics if t.strip()]
    if not cleaned:
        raise ValidationError({"topics": ['Subscribe to at least one topic ("*" for all).']})
    for topic in cleaned:
        if len(topic) > 100 or not all(c.isalnum() or c in "._-*?" for c in topic):
            raise ValidationError({"topics": [f"Not a topic pattern: {topic!r}."]})
    return cleaned


def create_channel(
    principal: Principal,
    organization: Organization,
    *,
    name: str,
    kind: str,
    target: str,
    topics: list[str],
    secret: str = "",
    projects: Iterable[Project] = (),
) -> NotificationChannel:
    require_role(principal, organization, Role.ADMIN)
    hint = _validate_target(kind, target)
    channel = NotificationChannel(
        organization=organization,
        name=name.strip(),
        kind=kind,
        target_encrypted=crypto.encrypt(target.strip()),
        target_hint=hint,
        secret_encrypted=crypto.encrypt(secret) if secret else "",
        topics=_validate_topics(topics),
        created_by=principal.user,
    )
    channel.full_clean(exclude=["created_by", "target_encrypted"])
    project_list = list(projects)
    if any(p.organization_id != organization.pk for p in project_list):
        raise ValidationError({"projects": ["Every project must belong to this organization."]})
    with transaction.atomic():
        channel.save()
        channel.projects.set(project_list)
        audit.record(
            principal.actor,
            "notification_channel.create",
            organization=organization,
            target=channel,
            changes={
                "kind": kind,
                "target": hint,
                "topics": channel.topics,
                "signed": bool(secret),
                "projects": [p.slug for p in project_list],
            },
        )
    return channel


def set_channel_enabled(
    principal: Principal, channel: NotificationChannel, enabled: bool
) -> NotificationChannel:
    require_role(principal, channel.organization, Role.ADMIN)
    with transaction.atomic():
        channel.enabled = enabled
        channel.save(update_fields=["enabled"])
        audit.record(
            principal.actor,
            "notification_channel.enable" if enabled else "notification_channel.disable",
            organization=channel.organization,
            target=channel,
        )
    return channel


def delete_channel(principal: Principal, channel: NotificationChannel) -> None:
    require_role(principal, channel.organization, Role.ADMIN)
    with transaction.atomic():
        audit.record(
            principal.actor,
            "notification_channel.delete",
            organization=channel.organization,
            target=channel,
        )
        channel.delete()


def send_test(principal: Principal, channel: NotificationChannel) -> NotificationDelivery:
    """Send a test message to one channel, bypassing topics and rate limits."""
    require_role(principal, channel.organization, Role.ADMIN)
    with transaction.atomic():
        audit.record(
            principal.actor,
            "notification_channel.test",
            organization=channel.organization,
            target=channel,
        )
        delivery = NotificationDelivery.objects.create(
            organization=channel.organization,
            channel=channel,
            topic="core.channel.test",
            subject=f"Test message for {channel.name}",
            text=f"{principal.actor.label} sent this test from Bastion's notification settings.",
            url=absolute_url(f"/o/{channel.organization.slug}/settings/notifications/"),
        )
        _send_after_commit(delivery.pk)
    return delivery


def channels_for(principal: Principal, organization: Organization) -> QuerySet[NotificationChannel]:
    require_role(principal, organization, Role.VIEWER)
    return NotificationChannel.objects.filter(organization=organization).order_by("name")


def get_channel_for(
    principal: Principal, organization: Organization, channel_id: int, minimum: str = Role.ADMIN
) -> NotificationChannel:
    """One channel of ``organization`` (404 outside the caller's scope, 403 below ``minimum``)."""
    return get_scoped_or_404(
        principal,
        channels_for(principal, organization),
        channel_id,
        org_path="organization",
        what="notification channel",
        minimum=minimum,
        organization=organization,
    )


def deliveries_for(
    principal: Principal, organization: Organization
) -> QuerySet[NotificationDelivery]:
    require_role(principal, organization, Role.VIEWER)
    return (
        NotificationDelivery.objects.filter(organization=organization)
        .select_related("channel", "recipient")
        .order_by("-created_at", "-pk")
    )
