"""Error alerts, decided in the ingest batch that grouped the events (``store.store_batch``
calls :func:`after_store` inside its transaction), delivered by core notifications after commit.

Kinds (topics ``errors.issue.<kind>``):
- ``new``: the batch holds the issue's first event that matched no ignore rule (usually: the
  batch created the issue; an issue whose earlier events were all suppressed is new at its
  first unsuppressed one);
- ``regressed``: the batch reopened a resolved issue;
- ``unexpected``: the issue's first event in the production environment (its name is a project
  setting) that matched no ignore rule;
- ``spike``: at least N events of the issue in the last M minutes.

Events matched by an ignore rule are counted on their issue but raise nothing, and ignored
issues raise nothing. When several kinds hold for one issue at once, each channel gets one
message: of the first kind (in the order above) it subscribes to, listing all of them.

Rate limit: new, regressed and unexpected happen once per occurrence by nature; a spike is
held back while the issue is in its cool-down (an alert on it delivered to some channel, or an
earlier spike, in the last ``cooldown_minutes``), so an error storm of a new issue yields one
alert. Notifications' own ``dedupe_key`` catches what races past that.

Cost on the hot path: nothing for a batch without candidates (settings are cached per process);
the state of an issue is read only for a production or spike candidate, and spike counts run at
most once per ``SPIKE_CHECK_S`` per issue and process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.urls import reverse

from bastion.core.models import NotificationChannel, Project
from bastion.core.notifications import Message, absolute_url, channels_for_message, notify
from bastion.errors.alert_models import AlertSettings, AlertState
from bastion.errors.lifecycle import Transition
from bastion.errors.models import Event, Issue, IssueStatus

logger = logging.getLogger(__name__)

KINDS = ("regressed", "unexpected", "new", "spike")
SPIKE_CHECK_S = 5.0
SETTINGS_TTL_S = 30.0
MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class AlertConfig:
    on_new: bool
    on_regression: bool
    on_unexpected: bool
    production_environment: str
    on_spike: bool
    spike_events: int
    spike_minutes: int
    cooldown_minutes: int

    @classmethod
    def of(cls, row: AlertSettings) -> AlertConfig:
        return cls(
            on_new=row.on_new,
            on_regression=row.on_regression,
            on_unexpected=row.on_unexpected,
            production_environment=row.production_environment,
            on_spike=row.on_spike,
            spike_events=max(row.spike_events, 1),
            spike_minutes=max(row.spike_minutes, 1),
            cooldown_minutes=row.cooldown_minutes,
        )


DEFAULTS = AlertConfig.of(AlertSettings())


class ProcessMemory:
    """Per-process caches that spare the hot path queries: alert settings (for a few seconds),
    issues already alerted for production (never reverts), spike checks and cool-downs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings: dict[int, tuple[float, AlertConfig]] = {}
        self.production_alerted: set[int] = set()
        self.spike_checked: dict[int, float] = {}
        self.cooling_until: dict[int, datetime] = {}

    def config(self, project_ids: set[int]) -> dict[int, AlertConfig]:
        now = time.monotonic()
        with self._lock:
            fresh = {
                pid: cfg
                for pid, (at, cfg) in self.settings.items()
                if pid in project_ids and now - at < SETTINGS_TTL_S
            }
        missing = project_ids - fresh.keys()
        if missing:
            rows = {r.project_id: r for r in AlertSettings.objects.filter(project_id__in=missing)}
            loaded = {
                pid: AlertConfig.of(rows[pid]) if pid in rows else DEFAULTS for pid in missing
            }
            with self._lock:
                if len(self.settings) > MAX_REMEMBERED:
                    self.settings.clear()
                self.settings.update({pid: (now, cfg) for pid, cfg in loaded.items()})
            fresh.update(loaded)
        return fresh

    def spike_due(self, issue_id: int, now: datetime) -> bool:
        """Whether to count this issue's recent events now (throttled, and not cooling down)."""
        clock = time.monotonic()
        with self._lock:
            until = self.cooling_until.get(issue_id)
            if until is not None and now < until:
                return False
            if clock - self.spike_checked.get(issue_id, -SPIKE_CHECK_S) < SPIKE_CHECK_S:
                return False
            if len(self.spike_checked) > MAX_REMEMBERED:
                self.spike_checked.clear()
            self.spike_checked[issue_id] = clock
            return True

    def remember(self, state: AlertState, cooldown: timedelta) -> None:
        with self._lock:
            if len(self.cooling_until) > MAX_REMEMBERED:
                self.cooling_until.clear()
                self.production_alerted.clear()
            if state.production_alerted:
                self.production_alerted.add(state.issue_id)
            if state.last_alert_at is not None or state.spike_at is not None:
                self.cooling_until[state.issue_id] = cooling_until(state, cooldown)

    def clear(self, project_id: int | None = None) -> None:
        with self._lock:
            if project_id is None:
                self.settings.clear()
                self.production_alerted.clear()
                self.spike_checked.clear()
                self.cooling_until.clear()
            else:
                self.settings.pop(project_id, None)


memory = ProcessMemory()


@dataclass
class Candidate:
    """One issue of the batch that may alert, and why."""

    issue: Issue
    config: AlertConfig
    kinds: list[str] = field(default_factory=list)
    maybe_unexpected: bool = False
    maybe_spike: bool = False
    environment: str = ""
    release: str = ""
    spike_count: int = 0


def after_store(
    events: Sequence[Event], issues: Sequence[Issue], regressions: list[Transition]
) -> None:
    """Decide and queue the alerts of one stored batch (inside its transaction). A failure here
    is logged and rolled back to a savepoint: it never costs an acknowledged event."""
    try:
        candidates = _candidates(events, issues, regressions)
        if candidates:
            with transaction.atomic():
                _alert(candidates, max(e.received_at for e in events))
    except Exception:  # alerts must never fail ingest: logged with context, batch kept
        logger.exception("alert evaluation failed for a batch of %d events", len(events))


def _candidates(
    events: Sequence[Event], issues: Sequence[Issue], regressions: list[Transition]
) -> list[Candidate]:
    unsuppressed: dict[int, int] = {}  # per issue, events of the batch no rule matched
    counted: dict[int, Event] = {}  # the last unsuppressed event of each issue
    production: set[int] = set()
    for event in events:
        if event.suppressed_by_id is None:
            unsuppressed[event.issue_id] = unsuppressed.get(event.issue_id, 0) + 1
            counted[event.issue_id] = event
    if not counted:
        return []
    by_id = {issue.pk: issue for issue in issues if issue.pk in counted}
    configs = memory.config({issue.project_id for issue in by_id.values()})
    regressed = {t.issue_id for t in regressions if t.action == "errors.issue.regressed"}
    for event in events:
        issue = by_id.get(event.issue_id)
        if issue is not None and event.suppressed_by_id is None:
            if event.environment == configs[issue.project_id].production_environment:
                production.add(issue.pk)
    found = []
    for issue_id, issue in by_id.items():
        if issue.status == IssueStatus.IGNORED:
            continue
        cfg = configs[issue.project_id]
        last = counted[issue_id]
        candidate = Candidate(issue, cfg, environment=last.environment, release=last.release)
        if cfg.on_regression and issue_id in regressed:
            candidate.kinds.append("regressed")
        if cfg.on_new and issue.event_count - issue.suppressed_count == unsuppressed[issue_id]:
            candidate.kinds.append("new")
        candidate.maybe_unexpected = (
            cfg.on_unexpected
            and issue_id in production
            and issue_id not in memory.production_alerted
        )
        if candidate.maybe_unexpected:
            candidate.environment = cfg.production_environment
        candidate.maybe_spike = (
            cfg.on_spike
            and issue.event_count >= cfg.spike_events
            and memory.spike_due(issue_id, last.received_at)
        )
        if candidate.kinds or candidate.maybe_unexpected or candidate.maybe_spike:
            found.append(candidate)
    return found


def _spike_counts(candidates: list[Candidate], now: datetime) -> dict[int, int]:
    by_window: dict[int, list[int]] = {}
    for c in candidates:
        if c.maybe_spike:
            by_window.setdefault(c.config.spike_minutes, []).append(c.issue.pk)
    counts: dict[int, int] = {}
    for minutes, ids in by_window.items():
        rows = (
            Event.objects.filter(
                issue_id__in=ids,
                received_at__gte=now - timedelta(minutes=minutes),
                suppressed_by__isnull=True,
            )
            .values("issue_id")
            .annotate(n=Count("id"))
            .values_list("issue_id", "n")
        )
        counts.update(dict(rows))
    return counts


def _alert(candidates: list[Candidate], now: datetime) -> None:
    ids = [c.issue.pk for c in candidates]
    states = {
        s.issue_id: s for s in AlertState.objects.select_for_update().filter(issue_id__in=ids)
    }
    spikes = _spike_counts(candidates, now)
    projects = Project.objects.select_related("organization").in_bulk(
        {c.issue.project_id for c in candidates}
    )
    router = ChannelRouter()
    created: list[AlertState] = []
    for candidate in candidates:
        issue = candidate.issue
        state = states.get(issue.pk) or AlertState(issue_id=issue.pk)
        cooldown = timedelta(minutes=candidate.config.cooldown_minutes)
        changed = _decide(candidate, state, spikes.get(issue.pk, 0), now, cooldown)
        if candidate.kinds:
            candidate.kinds.sort(key=KINDS.index)
            if router.send(candidate, projects[issue.project_id]):
                state.last_alert_at, state.last_kind = now, candidate.kinds[0]
                state.alerts += 1
            if "spike" in candidate.kinds:
                state.spike_at = now
        if state.pk is None and (changed or candidate.kinds):
            created.append(state)
        elif changed or candidate.kinds:
            state.save()
        memory.remember(state, cooldown)
    AlertState.objects.bulk_create(created)


def cooling_until(state: AlertState, cooldown: timedelta) -> datetime:
    """Spikes of the issue stay quiet until then: a cool-down after the last alert delivered
    to a channel, and after the last spike (delivered or not, so it is decided once)."""
    moments = [m for m in (state.last_alert_at, state.spike_at) if m is not None]
    return max(moments) + cooldown if moments else datetime.min.replace(tzinfo=UTC)


def _decide(
    candidate: Candidate, state: AlertState, spike_count: int, now: datetime, cooldown: timedelta
) -> bool:
    """Add the kinds that need the issue's alert state; whether the state changed."""
    changed = False
    if candidate.maybe_unexpected and not state.production_alerted:
        candidate.kinds.append("unexpected")
        state.production_alerted = changed = True
    if candidate.maybe_spike and spike_count >= candidate.config.spike_events:
        if cooling_until(state, cooldown) > now and not candidate.kinds:
            state.held_back += 1
            changed = True
        else:
            candidate.kinds.append("spike")
            candidate.spike_count = spike_count
    return changed


def _issue_path(project: Project, issue: Issue) -> str:
    return reverse(
        "errors:issue",
        kwargs={"org": project.organization.slug, "project": project.slug, "issue_id": issue.pk},
    )


def message_for(candidate: Candidate, project: Project, kind: str) -> Message:
    issue = candidate.issue
    cfg = candidate.config
    subjects = {
        "new": f"New issue in {project.name}: {issue.title}",
        "regressed": f"Regression in {project.name}: {issue.title}",
        "unexpected": f"Unexpected error in {candidate.environment} ({project.name}): {issue.title}",
        "spike": (
            f"Spike in {project.name}: {candidate.spike_count} events in "
            f"{cfg.spike_minutes} min: {issue.title}"
        ),
    }
    facts: dict[str, Any] = {
        "kind": kind,
        "kinds": list(candidate.kinds),
        "organization": project.organization.slug,
        "project": project.slug,
        "issue_id": issue.pk,
        "title": issue.title,
        "culprit": issue.culprit,
        "level": issue.level,
        "status": issue.status,
        "event_count": issue.event_count,
        "users_affected": issue.users_affected,
        "environment": candidate.environment,
        "release": candidate.release,
        "first_seen": issue.first_seen.isoformat(),
        "last_seen": issue.last_seen.isoformat(),
    }
    if "spike" in candidate.kinds:
        facts["spike"] = {"events": candidate.spike_count, "minutes": cfg.spike_minutes}
    lines = [
        f"{', '.join(candidate.kinds)}: {issue.title}",
        f"Project: {project.organization.slug}/{project.slug}",
        f"Where: {issue.culprit or '-'}",
        f"Events: {issue.event_count}, users affected: {issue.users_affected}",
        f"Environment: {candidate.environment or '-'}, release: {candidate.release or '-'}",
        f"First seen: {issue.first_seen:%Y-%m-%d %H:%M:%S} UTC",
    ]
    return Message(
        topic=f"errors.issue.{kind}",
        subject=subjects[kind][:300],
        text="\n".join(lines),
        url=absolute_url(_issue_path(project, issue)),
        data=facts,
    )


def _dedupe_key(candidate: Candidate, kind: str) -> str:
    issue = candidate.issue
    if kind == "regressed" and issue.regressed_at is not None:
        return f"errors:issue:{issue.pk}:regressed:{int(issue.regressed_at.timestamp())}"
    return f"errors:issue:{issue.pk}:{kind}"


class ChannelRouter:
    """Sends a candidate's alert: one message per channel, of the first kind (in KINDS order)
    the channel subscribes to. Channel lookups are shared by the batch's candidates."""

    def __init__(self) -> None:
        self._channels: dict[tuple[int, str], list[NotificationChannel]] = {}

    def channels(self, project: Project, kind: str) -> list[NotificationChannel]:
        key = (project.pk, kind)
        if key not in self._channels:
            topic = f"errors.issue.{kind}"
            self._channels[key] = channels_for_message(project.organization, topic, project)
        return self._channels[key]

    def send(self, candidate: Candidate, project: Project) -> bool:
        """Whether any channel got the alert."""
        served: set[int] = set()
        window = timedelta(minutes=max(candidate.config.cooldown_minutes, 1))
        for kind in candidate.kinds:
            channels = [c for c in self.channels(project, kind) if c.pk not in served]
            if not channels:
                continue
            served |= {c.pk for c in channels}
            notify(
                project.organization,
                message_for(candidate, project, kind),
                project=project,
                channels=channels,
                dedupe_key=_dedupe_key(candidate, kind),
                window=window,
            )
        return bool(served)
