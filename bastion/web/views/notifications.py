"""Settings → Notifications: channels (email, signed webhook, Slack-compatible) and deliveries."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from bastion.core import notifications
from bastion.core.models import NotificationChannel, Organization, Role
from bastion.web.views._common import apply_errors, org_action, org_page, page, principal_of


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="e.g. “security on-call”.")
    kind = forms.ChoiceField(choices=NotificationChannel.Kind.choices)
    target = forms.CharField(
        max_length=2000,
        help_text="Comma-separated email addresses, or the webhook URL (stored encrypted).",
    )
    topics = forms.CharField(
        max_length=500,
        initial="*",
        help_text="Space-separated globs: errors.*, scanning.finding.overdue, browser.run.failed …",
    )
    secret = forms.CharField(
        max_length=200,
        required=False,
        widget=forms.PasswordInput,
        help_text="Webhooks only: the HMAC key for X-Bastion-Signature (never shown again).",
    )


def _page(
    request: HttpRequest,
    organization: Organization,
    form: ChannelForm | None = None,
    status: int = 200,
) -> HttpResponse:
    principal = principal_of(request)
    context = {
        "channels": list(
            notifications.channels_for(principal, organization).prefetch_related("projects")
        ),
        "deliveries": list(notifications.deliveries_for(principal, organization)[:50]),
        "form": form or ChannelForm(),
        "tab": "notifications",
    }
    return page(
        request, "web/settings/notifications.html", context, section="settings", status=status
    )


def _channel(
    request: HttpRequest, organization: Organization, channel_id: int
) -> NotificationChannel:
    return notifications.get_channel_for(principal_of(request), organization, channel_id)


@org_page(Role.VIEWER)
def channels(request: HttpRequest, organization: Organization) -> HttpResponse:
    return _page(request, organization)


@org_action(Role.ADMIN)
def channel_create(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = ChannelForm(request.POST)
    if form.is_valid():
        try:
            channel = notifications.create_channel(
                principal_of(request),
                organization,
                name=form.cleaned_data["name"],
                kind=form.cleaned_data["kind"],
                target=form.cleaned_data["target"],
                topics=form.cleaned_data["topics"].split(),
                secret=form.cleaned_data["secret"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Channel {channel.name} created.")
            return redirect("web:notifications", org=organization.slug)
    return _page(request, organization, form, status=400)


@org_action(Role.ADMIN)
def channel_toggle(
    request: HttpRequest, organization: Organization, channel_id: int
) -> HttpResponse:
    channel = _channel(request, organization, channel_id)
    notifications.set_channel_enabled(principal_of(request), channel, not channel.enabled)
    state = "enabled" if channel.enabled else "paused"
    messages.success(request, f"Channel {channel.name} {state}.")
    return redirect("web:notifications", org=organization.slug)


@org_action(Role.ADMIN)
def channel_test(request: HttpRequest, organization: Organization, channel_id: int) -> HttpResponse:
    channel = _channel(request, organization, channel_id)
    notifications.send_test(principal_of(request), channel)
    messages.success(request, f"Test message queued for {channel.name}; see Deliveries below.")
    return redirect("web:notifications", org=organization.slug)


@org_action(Role.ADMIN)
def channel_delete(
    request: HttpRequest, organization: Organization, channel_id: int
) -> HttpResponse:
    channel = _channel(request, organization, channel_id)
    notifications.delete_channel(principal_of(request), channel)
    messages.success(request, f"Channel {channel.name} deleted.")
    return redirect("web:notifications", org=organization.slug)
