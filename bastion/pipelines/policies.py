"""Cluster policies: which pipelines may run jobs on a cluster, and from which branches.

A restricted cluster runs only jobs of the pipelines it lists, and of a listed pipeline with
branch patterns only builds of matching branches (``main release/*``, fnmatch-style). The check
runs on the server when the scheduler creates a step's jobs: a refused job is created already
failed (exit -1, ``policy_refused``) with the reason as its log, so the build shows why; nothing
is ever sent to the cluster's agents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.models import Role
from bastion.jobs import gates
from bastion.jobs.models import Cluster, Job, JobLogChunk, JobState
from bastion.pipelines.models import Build, ClusterPipelineRule, ClusterPolicy, Pipeline

REFUSED = gates.REFUSED  # a refused job's signal_reason
MAX_RULES = 200
_PATTERN = re.compile(r"^[A-Za-z0-9._/*?\[\]!-]{1,200}$")


@dataclass(frozen=True)
class Rule:
    pipeline: str  # slug
    branches: str = ""  # space-separated patterns; empty: any branch


@dataclass(frozen=True)
class PolicyView:
    cluster: str
    restricted: bool
    rules: list[Rule]


def policy_of(principal: Principal, cluster: Cluster) -> PolicyView:
    require_role(principal, cluster.organization, Role.VIEWER)
    policy = ClusterPolicy.objects.filter(cluster=cluster).first()
    if policy is None:
        return PolicyView(cluster=cluster.name, restricted=False, rules=[])
    rules = policy.rules.select_related("pipeline").order_by("pipeline__slug")
    return PolicyView(
        cluster=cluster.name,
        restricted=policy.restricted,
        rules=[Rule(r.pipeline.slug, r.branches) for r in rules],
    )


def checked_rules(cluster: Cluster, rules: list[Rule]) -> list[tuple[Pipeline, str]]:
    errors: list[str] = []
    if len(rules) > MAX_RULES:
        raise ValidationError({"rules": [f"At most {MAX_RULES} pipelines."]})
    slugs = [r.pipeline for r in rules]
    found = {
        p.slug: p
        for p in Pipeline.objects.filter(organization_id=cluster.organization_id, slug__in=slugs)
    }
    checked = []
    for rule in rules:
        pipeline = found.get(rule.pipeline)
        patterns = rule.branches.split()
        if pipeline is None:
            errors.append(f"No pipeline {rule.pipeline!r} in this organization.")
        elif slugs.count(rule.pipeline) > 1:
            errors.append(f"Pipeline {rule.pipeline!r} is listed twice.")
        elif not all(_PATTERN.match(p) for p in patterns):
            errors.append(f"{rule.pipeline}: branch patterns are like `main release/*`.")
        else:
            checked.append((pipeline, " ".join(patterns)))
    if errors:
        raise ValidationError({"rules": sorted(set(errors))})
    return checked


def set_policy(
    principal: Principal, cluster: Cluster, *, restricted: bool, rules: list[Rule]
) -> PolicyView:
    """Replace the cluster's policy (admins); audited with the rules before and after."""
    require_role(principal, cluster.organization, Role.ADMIN)
    checked = checked_rules(cluster, rules)
    before = policy_of(principal, cluster)
    with transaction.atomic():
        policy, _ = ClusterPolicy.objects.select_for_update().get_or_create(cluster=cluster)
        policy.restricted = restricted
        policy.updated_by = principal.actor.label[:200]
        policy.updated_at = timezone.now()
        policy.save()
        policy.rules.all().delete()
        ClusterPipelineRule.objects.bulk_create(
            ClusterPipelineRule(policy=policy, pipeline=p, branches=b) for p, b in checked
        )
        after = policy_of(principal, cluster)
        audit.record(
            principal.actor,
            "cluster.policy",
            organization=cluster.organization,
            target=cluster,
            changes=audit.diff(_summary(before), _summary(after)),
        )
    return after


def _summary(view: PolicyView) -> dict[str, object]:
    return {
        "restricted": view.restricted,
        "rules": {r.pipeline: r.branches or "*" for r in view.rules},
    }


def refusal(build: Build) -> str | None:
    """Why the build's jobs may not run on its pipeline's cluster, or None when they may."""
    policy = ClusterPolicy.objects.filter(cluster_id=build.pipeline.cluster_id).first()
    if policy is None or not policy.restricted:
        return None
    rules = [
        Rule(build.pipeline.slug, r.branches)
        for r in policy.rules.filter(pipeline_id=build.pipeline_id)
    ]
    return rules_refusal(rules, build, f"cluster {build.pipeline.cluster.name}")


def rules_refusal(rules: list[Rule], build: Build, where: str) -> str | None:
    """Why ``rules`` (allowed pipelines, each with optional branch patterns) do not allow the
    build, or None. Shared by the cluster policy and cluster secrets' access rules."""
    pipeline = build.pipeline.slug
    rule = next((r for r in rules if r.pipeline == pipeline), None)
    if rule is None:
        return f"pipeline {pipeline} is not allowed on {where}"
    patterns = rule.branches.split()
    if patterns and not any(fnmatchcase(build.branch, p) for p in patterns):
        return (
            f"branch {build.branch} is not a protected branch of pipeline {pipeline} "
            f"on {where} (allowed: {' '.join(patterns)})"
        )
    return None


def refuse_jobs(principal: Principal, build: Build, jobs: list[Job], reason: str) -> None:
    """Finish freshly created jobs as failed, with the reason as their log (audited)."""
    now = timezone.now()
    audit.record(
        principal.actor,
        "job.refused",
        organization=build.organization,
        target=build,
        changes={"jobs": [j.pk for j in jobs], "reason": reason},
    )
    text = f"[bastion] refused by the cluster policy, nothing was run: {reason}\n"
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(
        state=JobState.FAILED,
        exit_status=-1,
        signal_reason=REFUSED,
        finished_at=now,
        log_bytes=len(text.encode()),
        result={"refused": reason[:500]},
    )
    JobLogChunk.objects.bulk_create(JobLogChunk(job_id=j.pk, seq=0, data=text) for j in jobs)
    for job in jobs:
        job.state, job.exit_status, job.signal_reason, job.finished_at = (
            JobState.FAILED,
            -1,
            REFUSED,
            now,
        )
        job.result = {"refused": reason[:500]}
