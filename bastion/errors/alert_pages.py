"""Pages of error alerts and the review digest: a project's alert settings with the alerts it
recently sent, the digest form of the review-coverage page, and the coverage PDF.

Thin views: reads through the scoped helpers, changes through ``bastion.errors.actions``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from bastion.core import notifications
from bastion.core.access import get_project_for
from bastion.core.models import Organization, Project, Role
from bastion.errors import actions
from bastion.errors.alerts import KINDS
from bastion.web.views._common import apply_errors, can, org_action, org_page, page, principal_of

RECENT_ALERTS = 20


class AlertSettingsForm(forms.Form):
    on_new = forms.BooleanField(required=False, label="New issue")
    on_regression = forms.BooleanField(required=False, label="Regression")
    on_unexpected = forms.BooleanField(
        required=False, label="Unexpected error in production (matches no ignore rule)"
    )
    production_environment = forms.CharField(
        max_length=64, label="Production environment", help_text="The SDK's environment name."
    )
    on_spike = forms.BooleanField(required=False, label="Spike (N events within M minutes)")
    spike_events = forms.IntegerField(min_value=1, max_value=1_000_000, label="Spike: N events")
    spike_minutes = forms.IntegerField(min_value=1, max_value=1440, label="Spike: within M minutes")
    cooldown_minutes = forms.IntegerField(
        min_value=0,
        max_value=10080,
        label="Cool-down (minutes)",
        help_text="After an alert on an issue, its spikes stay quiet this long.",
    )

    def spec(self) -> actions.AlertSpec:
        return actions.AlertSpec(**self.cleaned_data)


class DigestForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Send the weekly digest")
    cron = forms.CharField(
        max_length=100, label="When (cron)", help_text="0 8 * * 1 = Mondays 08:00"
    )
    timezone = forms.CharField(max_length=64, label="Time zone", help_text="e.g. Europe/Lisbon")
    recipients = forms.CharField(
        required=False,
        max_length=5000,
        label="Recipients",
        help_text="Comma-separated; empty: the organization's owners and admins.",
    )

    def spec(self) -> actions.DigestSpec:
        data = self.cleaned_data
        recipients = [r for r in data["recipients"].replace("\n", ",").split(",") if r.strip()]
        return actions.DigestSpec(data["enabled"], data["cron"], data["timezone"], recipients)


def digest_form(organization: Organization) -> DigestForm:
    digest = actions.digest_of(organization)
    initial = {**digest.spec.__dict__, "recipients": ", ".join(digest.spec.recipients)}
    if digest.schedule is None:
        initial["enabled"] = True  # the form proposes turning it on
    return DigestForm(initial=initial)


def _alerts_page(
    request: HttpRequest,
    organization: Organization,
    project: Project,
    form: AlertSettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    principal = principal_of(request)
    row = actions.alert_settings_of(project)
    sent = notifications.deliveries_for(principal, organization).filter(
        topic__startswith="errors.issue.", data__project=project.slug
    )
    channels = [
        channel
        for kind in KINDS
        for channel in notifications.channels_for_message(
            organization, f"errors.issue.{kind}", project
        )
    ]
    form = form or AlertSettingsForm(initial=actions.AlertSpec.of(row).__dict__)
    if not can(request, Role.ADMIN):
        for field in form.fields.values():
            field.disabled = True  # shown, not editable
    context: dict[str, Any] = {
        "project": project,
        "settings_row": row,
        "form": form,
        "alerts": list(sent.select_related("channel")[:RECENT_ALERTS]),
        "channels": sorted({c.name for c in channels}),
        "can_change": can(request, Role.ADMIN),
    }
    return page(request, "errors/alert_settings.html", context, section="errors", status=status)


@org_page()
def alert_settings(request: HttpRequest, organization: Organization, project: str) -> HttpResponse:
    found = get_project_for(principal_of(request), organization.slug, project)
    return _alerts_page(request, organization, found)


@org_action(minimum=Role.ADMIN)
def alert_settings_save(
    request: HttpRequest, organization: Organization, project: str
) -> HttpResponseBase:
    principal = principal_of(request)
    found = get_project_for(principal, organization.slug, project, minimum=Role.ADMIN)
    form = AlertSettingsForm(request.POST)
    if not form.is_valid():
        return _alerts_page(request, organization, found, form, status=400)
    try:
        actions.update_alert_settings(principal, found, form.spec())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _alerts_page(request, organization, found, form, status=400)
    messages.success(request, "Alert settings saved.")
    return redirect("errors:alert-settings", org=organization.slug, project=project)


@org_action(minimum=Role.ADMIN)
def digest_save(request: HttpRequest, organization: Organization, project: str) -> HttpResponseBase:
    """The digest form of the review-coverage page (the digest covers every project)."""
    principal = principal_of(request)
    get_project_for(principal, organization.slug, project, minimum=Role.ADMIN)
    form = DigestForm(request.POST)
    if form.is_valid():
        try:
            actions.update_digest(principal, organization, form.spec())
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Weekly review digest saved.")
    else:
        messages.error(request, "Check the digest form: " + form.errors.as_text())
    return redirect("errors:review-coverage", org=organization.slug, project=project)
