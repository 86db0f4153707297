"""Models of error alerts and the weekly review digest (imported by ``bastion.errors.models``).

- ``AlertSettings``: per project, which alerts are raised (new issue, regression, spike of N
  events in M minutes, "unexpected": an issue in the production environment that matches no
  ignore rule) and the cool-down that folds an error storm into one alert. A project without a
  row uses the defaults of the fields.
- ``AlertState``: per issue, what was alerted and when (the rate limit's memory).
- ``DigestSettings``: per organization, who receives the weekly review digest (empty: the
  owners and admins); its timing is a core ``Schedule`` of kind ``errors.digest``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone as dj_timezone

from bastion.core.models import Organization, Project, User

DEFAULT_PRODUCTION = "production"


class AlertSettings(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="alert_settings")
    on_new = models.BooleanField(default=True)
    on_regression = models.BooleanField(default=True)
    on_unexpected = models.BooleanField(default=True)
    production_environment = models.CharField(max_length=64, default=DEFAULT_PRODUCTION)
    on_spike = models.BooleanField(default=True)
    spike_events = models.PositiveIntegerField(default=100)
    spike_minutes = models.PositiveIntegerField(default=5)
    # After any alert on an issue, spikes of that issue are held back this long.
    cooldown_minutes = models.PositiveIntegerField(default=60)
    updated_at = models.DateTimeField(default=dj_timezone.now)
    updated_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )


class AlertState(models.Model):
    issue = models.OneToOneField("errors.Issue", on_delete=models.CASCADE, related_name="+")
    # The last alert delivered to at least one channel.
    last_alert_at = models.DateTimeField(null=True, blank=True)
    # The last spike decided (delivered or not): a spike is decided once per cool-down.
    spike_at = models.DateTimeField(null=True, blank=True)
    last_kind = models.CharField(max_length=20, blank=True, default="")
    alerts = models.PositiveIntegerField(default=0)
    # Alerts held back by the cool-down (an error storm yields one alert, this counts the rest).
    held_back = models.PositiveIntegerField(default=0)
    production_alerted = models.BooleanField(default=False)


class DigestSettings(models.Model):
    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="error_digest"
    )
    # Email addresses; empty means the organization's owners and admins.
    recipients = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=dj_timezone.now)
