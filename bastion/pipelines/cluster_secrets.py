"""Cluster secrets (Buildkite's cluster secrets): encrypted, write-only values given to the jobs
of a cluster, either in a step's env (``secrets:``) or read from inside a job
(``bastion secret get NAME``).

A build gets a secret only when the cluster policy allows the build and the secret's own rules
(the cluster policy's terms: allowed pipelines, each with optional protected branches) allow it
too. Values are decrypted only when a job is dispatched to an agent of the cluster, stored in
the job's payload encrypted and named in ``secret_env`` so the agent and the server redact them
from the log; reads by jobs are audited by name, never by value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from bastion.core import audit, crypto
from bastion.core.access import Principal, require_role
from bastion.core.models import Role
from bastion.jobs.logs import with_redacted, with_sealed_env
from bastion.jobs.models import Cluster, Job
from bastion.pipelines import policies
from bastion.pipelines.models import Build, BuildJob, ClusterSecret
from bastion.pipelines.yaml import CommandStep
from bastion.pipelines.yaml import Pipeline as Definition

KEY = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
MAX_VALUE = 64 * 1024
MAX_SECRETS = 500


@dataclass(frozen=True)
class SecretView:
    """A secret as pages and the API show it: never its value."""

    key: str
    description: str
    rules: list[policies.Rule]
    updated_by: str
    updated_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, row: ClusterSecret) -> SecretView:
        return cls(
            key=row.key,
            description=row.description,
            rules=_rules(row),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
            created_at=row.created_at,
        )


def _rules(row: ClusterSecret) -> list[policies.Rule]:
    raw = row.rules if isinstance(row.rules, list) else []
    return [
        policies.Rule(str(r.get("pipeline", "")), str(r.get("branches", "")))
        for r in raw
        if isinstance(r, dict)
    ]


def secrets_of(principal: Principal, cluster: Cluster) -> list[SecretView]:
    require_role(principal, cluster.organization, Role.VIEWER)
    return [SecretView.of(r) for r in ClusterSecret.objects.filter(cluster=cluster).order_by("key")]


def get_secret_for(principal: Principal, cluster: Cluster, key: str) -> ClusterSecret:
    require_role(principal, cluster.organization, Role.VIEWER)
    found = ClusterSecret.objects.filter(cluster=cluster, key=key).first()
    if found is None:
        raise Http404("No such secret.")
    return found


def _check_value(value: str) -> None:
    if not value:
        raise ValidationError({"value": ["A secret needs a value."]})
    if len(value) > MAX_VALUE or "\x00" in value:
        raise ValidationError({"value": [f"At most {MAX_VALUE} characters, no NUL."]})


def _stored_rules(cluster: Cluster, rules: list[policies.Rule]) -> list[dict[str, str]]:
    checked = policies.checked_rules(cluster, rules)
    return [{"pipeline": p.slug, "branches": b} for p, b in checked]


def _summary(row: ClusterSecret) -> dict[str, object]:
    return {
        "description": row.description,
        "rules": {r["pipeline"]: r["branches"] or "*" for r in row.rules},
    }


def create_secret(
    principal: Principal,
    cluster: Cluster,
    *,
    key: str,
    value: str,
    description: str = "",
    rules: list[policies.Rule] | None = None,
) -> SecretView:
    """Add a secret to the cluster (admins); audited by name, never by value."""
    require_role(principal, cluster.organization, Role.ADMIN)
    if not KEY.match(key):
        raise ValidationError({"key": ["Secret names are like DEPLOY_TOKEN ([A-Z_][A-Z0-9_]*)."]})
    _check_value(value)
    stored_rules = _stored_rules(cluster, rules or [])
    with transaction.atomic():
        if ClusterSecret.objects.filter(cluster=cluster, key=key).exists():
            raise ValidationError({"key": [f"The cluster already has a secret {key}."]})
        if ClusterSecret.objects.filter(cluster=cluster).count() >= MAX_SECRETS:
            raise ValidationError({"key": [f"A cluster holds at most {MAX_SECRETS} secrets."]})
        row = ClusterSecret.objects.create(
            cluster=cluster,
            key=key,
            value_encrypted=crypto.encrypt(value),
            description=description[:500],
            rules=stored_rules,
            updated_by=principal.actor.label[:200],
        )
        audit.record(
            principal.actor,
            "cluster.secret_created",
            organization=cluster.organization,
            target=cluster,
            changes={"key": key, **_summary(row)},
        )
    return SecretView.of(row)


def update_secret(
    principal: Principal,
    cluster: Cluster,
    key: str,
    *,
    value: str | None = None,
    description: str | None = None,
    rules: list[policies.Rule] | None = None,
) -> SecretView:
    """Change a secret's value, description or rules (admins); ``None`` keeps a field."""
    require_role(principal, cluster.organization, Role.ADMIN)
    if value is not None:
        _check_value(value)
    stored_rules = _stored_rules(cluster, rules) if rules is not None else None
    with transaction.atomic():
        row = ClusterSecret.objects.select_for_update().filter(cluster=cluster, key=key).first()
        if row is None:
            raise Http404("No such secret.")
        before = _summary(row)
        if value is not None:
            row.value_encrypted = crypto.encrypt(value)
        if description is not None:
            row.description = description[:500]
        if stored_rules is not None:
            row.rules = stored_rules
        row.updated_by = principal.actor.label[:200]
        row.updated_at = timezone.now()
        row.save()
        changes = audit.diff(before, _summary(row))
        if value is not None:
            changes["value"] = "changed"  # that it changed, never what to
        audit.record(
            principal.actor,
            "cluster.secret_updated",
            organization=cluster.organization,
            target=cluster,
            changes={"key": key, **changes},
        )
    return SecretView.of(row)


def delete_secret(principal: Principal, cluster: Cluster, key: str) -> None:
    require_role(principal, cluster.organization, Role.ADMIN)
    with transaction.atomic():
        deleted, _ = ClusterSecret.objects.filter(cluster=cluster, key=key).delete()
        if not deleted:
            raise Http404("No such secret.")
        audit.record(
            principal.actor,
            "cluster.secret_deleted",
            organization=cluster.organization,
            target=cluster,
            changes={"key": key},
        )


# --- what a build's jobs get --------------------------------------------------------------------


def _refusal(row: ClusterSecret, build: Build) -> str | None:
    rules = _rules(row)
    if not rules:
        return None
    return policies.rules_refusal(rules, build, f"secret {row.key}")


def unknown_names(cluster_id: int, names: set[str]) -> set[str]:
    """The names no secret of the cluster has (reported when a pipeline is uploaded)."""
    found = set(
        ClusterSecret.objects.filter(cluster_id=cluster_id, key__in=names).values_list(
            "key", flat=True
        )
    )
    return names - found


def values_for(build: Build, wanted: dict[str, str]) -> dict[str, str]:
    """``{env name: value}`` of the secrets a step asks for (``{env: secret name}``).

    Raises ValidationError naming the secrets the build may not have (or that do not exist);
    the caller refuses the job with that reason.
    """
    rows = {
        r.key: r
        for r in ClusterSecret.objects.filter(
            cluster_id=build.pipeline.cluster_id, key__in=set(wanted.values())
        )
    }
    values: dict[str, str] = {}
    problems: list[str] = []
    for env, name in sorted(wanted.items()):
        row = rows.get(name)
        reason = f"no secret {name} on the cluster" if row is None else _refusal(row, build)
        if reason is not None or row is None:
            problems.append(str(reason))
            continue
        try:
            values[env] = crypto.decrypt(row.value_encrypted)
        except crypto.DecryptionError:
            problems.append(f"secret {name} cannot be decrypted (SECRET_KEY changed?)")
    if problems:
        raise ValidationError(problems)
    return values


def read_by_job(job: Job, build: Build, principal: Principal, name: str) -> str:
    """A secret read from inside a job: 404 when it does not exist or the build may not have
    it (one answer for both: no oracle). Audited with the job and the name."""
    row = ClusterSecret.objects.filter(cluster_id=job.cluster_id, key=name).first()
    if (
        row is None
        or row.cluster_id != build.pipeline.cluster_id
        or policies.refusal(build) is not None
        or _refusal(row, build) is not None
    ):
        raise Http404("No such secret.")
    try:
        value = crypto.decrypt(row.value_encrypted)
    except crypto.DecryptionError as exc:
        raise Http404("No such secret.") from exc
    payload = job.payload if isinstance(job.payload, dict) else {}
    Job.objects.filter(pk=job.pk).update(payload=with_redacted(payload, value))
    audit.record(
        principal.actor,
        "cluster.secret_read",
        organization=build.organization,
        target=job,
        changes={"job": job.pk, "key": name},
    )
    return value


def check_step_secrets(cluster: Cluster, definition: Definition) -> None:
    """Refuse a pipeline whose steps name secrets the cluster does not have, by step."""
    steps = [s for s in definition.steps if isinstance(s, CommandStep) and s.secrets]
    if not steps:
        return
    missing = unknown_names(cluster.pk, {name for s in steps for _, name in s.secrets})
    problems = [
        f"step {s.key}: no secret {name} on cluster {cluster.name}"
        for s in steps
        for name in sorted({n for _, n in s.secrets} & missing)
    ]
    if problems:
        raise ValidationError({"yaml": problems})


# --- at dispatch --------------------------------------------------------------------------------


def dispatch_gate(job: Job) -> str | None:
    """Run when an agent is given a pipeline job: re-check the cluster policy (it may have been
    tightened since the build started), then put the secrets the step asks for into the job's
    encrypted env. Returns why the job may not run, or None."""
    from bastion.pipelines.command_jobs import ORIGIN_PREFIX

    if not job.origin.startswith(ORIGIN_PREFIX):
        return None
    build_job = (
        BuildJob.objects.filter(pk=int(job.origin.removeprefix(ORIGIN_PREFIX) or 0))
        .select_related("build__pipeline__cluster", "build__organization")
        .first()
    )
    if build_job is None:
        return None
    build = build_job.build
    reason = policies.refusal(build)
    if reason is not None:
        return f"the cluster policy changed since the build started: {reason}"
    payload = job.payload if isinstance(job.payload, dict) else {}
    wanted = payload.get("cluster_secrets")
    if not isinstance(wanted, dict) or not wanted:
        return None
    try:
        values = values_for(build, {str(k): str(v) for k, v in wanted.items()})
    except ValidationError as exc:
        return "; ".join(exc.messages)
    job.payload = with_sealed_env(payload, values)
    Job.objects.filter(pk=job.pk).update(payload=job.payload)
    return None
