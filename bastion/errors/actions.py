"""Named actions of error alerts and the weekly review digest; each validates, runs in one
transaction and writes its audit row. (Issue, key and rule actions are in ``services``.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from bastion.core import audit, schedules
from bastion.core.access import Principal, require_role
from bastion.core.models import Organization, Project, Role, Schedule
from bastion.errors.alert_models import AlertSettings, DigestSettings
from bastion.errors.alerts import memory

DIGEST_KIND = "errors.digest"
DEFAULT_DIGEST_CRON = "0 8 * * 1"  # Mondays at 08:00
MAX_RECIPIENTS = 50
LIMITS = {
    "spike_events": (1, 1_000_000),
    "spike_minutes": (1, 24 * 60),
    "cooldown_minutes": (0, 7 * 24 * 60),
}


@dataclass(frozen=True)
class AlertSpec:
    on_new: bool = True
    on_regression: bool = True
    on_unexpected: bool = True
    production_environment: str = "production"
    on_spike: bool = True
    spike_events: int = 100
    spike_minutes: int = 5
    cooldown_minutes: int = 60

    @classmethod
    def of(cls, row: AlertSettings) -> AlertSpec:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def alert_settings_of(project: Project) -> AlertSettings:
    """The project's settings (an unsaved row of defaults when it has none)."""
    row = AlertSettings.objects.filter(project=project).first()
    return row if row is not None else AlertSettings(project=project)


def _validate_alerts(spec: AlertSpec) -> AlertSpec:
    errors: dict[str, list[str]] = {}
    for name, (low, high) in LIMITS.items():
        if not low <= getattr(spec, name) <= high:
            errors[name] = [f"Between {low} and {high}."]
    environment = spec.production_environment.strip()
    if not environment or len(environment) > 64:
        errors["production_environment"] = ["Between 1 and 64 characters."]
    if errors:
        raise ValidationError(errors)
    return AlertSpec(**{**asdict(spec), "production_environment": environment})


def update_alert_settings(principal: Principal, project: Project, spec: AlertSpec) -> AlertSettings:
    organization = project.organization
    require_role(principal, organization, Role.ADMIN)
    spec = _validate_alerts(spec)
    with transaction.atomic():
        row, _ = AlertSettings.objects.select_for_update().get_or_create(project=project)
        before = asdict(AlertSpec.of(row))
        for name, value in asdict(spec).items():
            setattr(row, name, value)
        row.updated_at = timezone.now()
        row.updated_by = principal.actor.user
        row.save()
        memory.clear(project.pk)  # now for this process; others within SETTINGS_TTL_S
        transaction.on_commit(lambda: memory.clear(project.pk))
        audit.record(
            principal.actor,
            "errors.alert_settings.update",
            organization=organization,
            target=project,
            changes=audit.diff(before, asdict(spec)),
        )
    return row


# --- weekly review digest ------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestSpec:
    enabled: bool = True
    cron: str = DEFAULT_DIGEST_CRON
    timezone: str = "UTC"
    recipients: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Digest:
    """An organization's digest settings as shown: schedule (if any) and recipients."""

    schedule: Schedule | None
    recipients: list[str]

    @property
    def spec(self) -> DigestSpec:
        if self.schedule is None:
            return DigestSpec(enabled=False, recipients=self.recipients)
        return DigestSpec(
            self.schedule.enabled, self.schedule.cron, self.schedule.timezone, self.recipients
        )

    @property
    def next_run_at(self) -> datetime | None:
        return self.schedule.next_run_at if self.schedule and self.schedule.enabled else None


def digest_of(organization: Organization) -> Digest:
    schedule = (
        Schedule.objects.filter(organization=organization, kind=DIGEST_KIND).order_by("pk").first()
    )
    row = DigestSettings.objects.filter(organization=organization).first()
    return Digest(schedule, list(row.recipients) if row else [])


def _validate_digest(spec: DigestSpec) -> DigestSpec:
    cron = " ".join(spec.cron.split())
    schedules.validate(cron, spec.timezone)
    recipients = sorted({r.strip().lower() for r in spec.recipients if r.strip()})
    if len(recipients) > MAX_RECIPIENTS:
        raise ValidationError({"recipients": [f"At most {MAX_RECIPIENTS} addresses."]})
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError as exc:
            raise ValidationError({"recipients": [f"Not an email address: {address!r}."]}) from exc
    return DigestSpec(spec.enabled, cron, spec.timezone, recipients)


def update_digest(principal: Principal, organization: Organization, spec: DigestSpec) -> Digest:
    """Create or change the organization's weekly review digest (schedule and recipients)."""
    require_role(principal, organization, Role.ADMIN)
    spec = _validate_digest(spec)
    with transaction.atomic():
        current = digest_of(organization)
        before = asdict(current.spec)
        schedule = current.schedule or Schedule(
            organization=organization, kind=DIGEST_KIND, object_id=str(organization.pk)
        )
        schedule.name = "Weekly error review digest"
        schedule.cron, schedule.timezone, schedule.enabled = spec.cron, spec.timezone, spec.enabled
        schedule.next_run_at = (
            schedules.next_runs(spec.cron, spec.timezone, timezone.now())[0]
            if spec.enabled
            else None
        )
        schedule.save()
        DigestSettings.objects.update_or_create(
            organization=organization,
            defaults={"recipients": spec.recipients, "updated_at": timezone.now()},
        )
        audit.record(
            principal.actor,
            "errors.digest.update",
            organization=organization,
            target=schedule,
            changes=audit.diff(before, asdict(spec)),
        )
    return Digest(schedule, spec.recipients)
