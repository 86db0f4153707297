"""Alert settings of a project and the organization's weekly review digest over /api/v1/.
Reads through the scoped helpers; writes through ``bastion.errors.actions``."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema

from bastion.core.access import get_organization_for, get_project_for
from bastion.core.api import READ_ERRORS, WRITE_ERRORS, principal_of
from bastion.core.models import Role
from bastion.errors import actions
from bastion.errors.alert_models import AlertSettings

router = Router(tags=["errors"])
PROJECT = "/organizations/{org}/projects/{project}"


class ErrorsAlertSettingsIn(Schema):
    on_new: bool = True
    on_regression: bool = True
    on_unexpected: bool = True
    production_environment: str = Field("production", min_length=1, max_length=64)
    on_spike: bool = True
    spike_events: int = Field(100, ge=1, le=1_000_000)
    spike_minutes: int = Field(5, ge=1, le=1440)
    cooldown_minutes: int = Field(60, ge=0, le=10080)

    def spec(self) -> actions.AlertSpec:
        return actions.AlertSpec(**self.dict())


class ErrorsAlertSettingsOut(ErrorsAlertSettingsIn):
    project: str
    updated_at: datetime | None = None

    @classmethod
    def of(cls, row: AlertSettings) -> ErrorsAlertSettingsOut:
        spec = actions.AlertSpec.of(row)
        return cls(
            project=row.project.slug,
            updated_at=row.updated_at if row.pk else None,
            **spec.__dict__,
        )


class ErrorsDigestIn(Schema):
    enabled: bool = True
    cron: str = Field(actions.DEFAULT_DIGEST_CRON, min_length=1, max_length=100)
    timezone: str = Field("UTC", min_length=1, max_length=64)
    recipients: list[str] = Field(default_factory=list, max_length=actions.MAX_RECIPIENTS)


class ErrorsDigestOut(ErrorsDigestIn):
    next_run_at: datetime | None = None

    @classmethod
    def of(cls, digest: actions.Digest) -> ErrorsDigestOut:
        spec = digest.spec
        return cls(
            enabled=spec.enabled,
            cron=spec.cron,
            timezone=spec.timezone,
            recipients=spec.recipients,
            next_run_at=digest.next_run_at,
        )


@router.get(PROJECT + "/alert-settings", response={200: ErrorsAlertSettingsOut, **READ_ERRORS})
def get_alert_settings(request: HttpRequest, org: str, project: str) -> ErrorsAlertSettingsOut:
    """Which alerts the project raises (defaults when never set)."""
    found = get_project_for(principal_of(request), org, project)
    return ErrorsAlertSettingsOut.of(actions.alert_settings_of(found))


@router.put(PROJECT + "/alert-settings", response={200: ErrorsAlertSettingsOut, **WRITE_ERRORS})
def put_alert_settings(
    request: HttpRequest, org: str, project: str, data: ErrorsAlertSettingsIn
) -> ErrorsAlertSettingsOut:
    principal = principal_of(request)
    found = get_project_for(principal, org, project, minimum=Role.ADMIN)
    return ErrorsAlertSettingsOut.of(actions.update_alert_settings(principal, found, data.spec()))


@router.get("/organizations/{org}/errors-digest", response={200: ErrorsDigestOut, **READ_ERRORS})
def get_digest(request: HttpRequest, org: str) -> ErrorsDigestOut:
    """The weekly review digest: schedule and recipients (empty: owners and admins)."""
    organization = get_organization_for(principal_of(request), org)
    return ErrorsDigestOut.of(actions.digest_of(organization))


@router.put("/organizations/{org}/errors-digest", response={200: ErrorsDigestOut, **WRITE_ERRORS})
def put_digest(request: HttpRequest, org: str, data: ErrorsDigestIn) -> ErrorsDigestOut:
    principal = principal_of(request)
    organization = get_organization_for(principal, org, minimum=Role.ADMIN)
    spec = actions.DigestSpec(data.enabled, data.cron, data.timezone, list(data.recipients))
    return ErrorsDigestOut.of(actions.update_digest(principal, organization, spec))
