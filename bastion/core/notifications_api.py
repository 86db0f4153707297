"""Notification channels and their deliveries over /api/v1/ (admins write, members read)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from bastion.core import access, notifications
from bastion.core.api import ORG, READ_ERRORS, WRITE_ERRORS, principal_of
from bastion.core.models import NotificationChannel, NotificationDelivery, Role

router = Router(tags=["notifications"])
CHANNELS = ORG + "/notification-channels"
ChannelKind = Literal["email", "webhook", "slack"]


class NotificationChannelIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    kind: ChannelKind
    target: str = Field(
        ..., min_length=1, max_length=2000, description="Comma-separated emails, or the hook URL."
    )
    topics: list[str] = Field(["*"], description='Topic globs, e.g. ["errors.*"].')
    secret: str = Field("", max_length=200, description="HMAC key for webhooks (never returned).")
    projects: list[str] = Field([], description="Project slugs; empty means all projects.")


class NotificationChannelPatch(Schema):
    enabled: bool


class NotificationChannelOut(Schema):
    id: int
    name: str
    kind: ChannelKind
    target: str = Field(..., description="Redacted: hook URLs show only their scheme and host.")
    topics: list[str]
    projects: list[str]
    signed: bool
    enabled: bool
    created_at: datetime

    @staticmethod
    def of(channel: NotificationChannel) -> NotificationChannelOut:
        return NotificationChannelOut(
            id=channel.pk,
            name=channel.name,
            kind=channel.kind,  # type: ignore[arg-type]
            target=channel.target_hint,
            topics=list(channel.topics),
            projects=[p.slug for p in channel.projects.all()],
            signed=bool(channel.secret_encrypted),
            enabled=channel.enabled,
            created_at=channel.created_at,
        )


class NotificationDeliveryOut(Schema):
    id: int
    channel: str
    topic: str
    subject: str
    url: str
    status: str
    suppressed_count: int
    attempts: int
    error: str
    created_at: datetime
    sent_at: datetime | None

    @staticmethod
    def of(delivery: NotificationDelivery) -> NotificationDeliveryOut:
        return NotificationDeliveryOut(
            id=delivery.pk,
            channel=delivery.destination,
            topic=delivery.topic,
            subject=delivery.subject,
            url=delivery.url,
            status=delivery.status,
            suppressed_count=delivery.suppressed_count,
            attempts=delivery.attempts,
            error=delivery.error,
            created_at=delivery.created_at,
            sent_at=delivery.sent_at,
        )


class DeliveryFilters(Schema):
    status: Literal["pending", "sent", "failed", "suppressed"] | None = None
    topic: str | None = Field(None, max_length=100)
    limit: int = Field(100, ge=1, le=500)


def _channel(request: HttpRequest, org: str, channel_id: int, minimum: str) -> NotificationChannel:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    return notifications.get_channel_for(principal, organization, channel_id, minimum)


@router.get(CHANNELS, response={200: list[NotificationChannelOut], **READ_ERRORS})
def list_channels(request: HttpRequest, org: str) -> list[NotificationChannelOut]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    channels = notifications.channels_for(principal, organization).prefetch_related("projects")
    return [NotificationChannelOut.of(c) for c in channels]


@router.post(CHANNELS, response={201: NotificationChannelOut, **WRITE_ERRORS})
def create_channel(
    request: HttpRequest, org: str, data: NotificationChannelIn
) -> Status[NotificationChannelOut]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    projects = list(access.projects_for(principal, organization).filter(slug__in=data.projects))
    if len(projects) != len(set(data.projects)):
        raise ValidationError({"projects": ["Unknown project slug."]})
    channel = notifications.create_channel(
        principal,
        organization,
        name=data.name,
        kind=data.kind,
        target=data.target,
        topics=data.topics,
        secret=data.secret,
        projects=projects,
    )
    return Status(201, NotificationChannelOut.of(channel))


@router.patch(CHANNELS + "/{channel_id}", response={200: NotificationChannelOut, **WRITE_ERRORS})
def update_channel(
    request: HttpRequest, org: str, channel_id: int, data: NotificationChannelPatch
) -> NotificationChannelOut:
    channel = _channel(request, org, channel_id, Role.ADMIN)
    notifications.set_channel_enabled(principal_of(request), channel, data.enabled)
    return NotificationChannelOut.of(channel)


@router.delete(CHANNELS + "/{channel_id}", response={204: None, **WRITE_ERRORS})
def delete_channel(request: HttpRequest, org: str, channel_id: int) -> Status[None]:
    channel = _channel(request, org, channel_id, Role.ADMIN)
    notifications.delete_channel(principal_of(request), channel)
    return Status(204, None)


@router.post(
    CHANNELS + "/{channel_id}/test", response={202: NotificationDeliveryOut, **WRITE_ERRORS}
)
def test_channel(
    request: HttpRequest, org: str, channel_id: int
) -> Status[NotificationDeliveryOut]:
    """Send a test message now (bypasses topics and rate limits); the answer is its delivery."""
    channel = _channel(request, org, channel_id, Role.ADMIN)
    delivery = notifications.send_test(principal_of(request), channel)
    delivery.refresh_from_db()
    return Status(202, NotificationDeliveryOut.of(delivery))


@router.get(
    ORG + "/notification-deliveries", response={200: list[NotificationDeliveryOut], **READ_ERRORS}
)
def list_deliveries(
    request: HttpRequest, org: str, filters: Query[DeliveryFilters]
) -> list[NotificationDeliveryOut]:
    principal = principal_of(request)
    organization = access.get_organization_for(principal, org)
    deliveries = notifications.deliveries_for(principal, organization)
    if filters.status:
        deliveries = deliveries.filter(status=filters.status)
    if filters.topic:
        deliveries = deliveries.filter(topic=filters.topic)
    return [NotificationDeliveryOut.of(d) for d in deliveries[: filters.limit]]
