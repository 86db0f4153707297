"""How findings move between scans, and the retest of one finding.

new → open (seen again) → fixed → reopened (seen again after it was fixed). A finding becomes
fixed only when a later scan *covered* it: the check that found it ran cleanly (status ``ok``)
and examined the finding's URL (or, for a script, the page that loads it) — the report's
``coverage`` map, recorded by the engine per check. A scan that skipped the check, failed in
it, or never reached that URL proves nothing, so the finding stays as it was. Manual findings
are never fixed by scans.

A retest is a scan job restricted to the finding's check, exploring only the finding's URL
and probing only its parameter; its outcome (fixed, still present with the new evidence, or
inconclusive) is audited and noted on the finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction

from bastion.core import audit
from bastion.core.access import Principal, require_role
from bastion.core.context import Actor
from bastion.core.models import Role
from bastion.jobs.dispatch import DEFAULT_QUEUE, create_job
from bastion.jobs.models import Cluster
from bastion.scanning.engine.checks import discover_checks
from bastion.scanning.engine.findings import coverage_key
from bastion.scanning.engine.policy import Scope
from bastion.scanning.models import (
    Finding,
    FindingComment,
    FindingSource,
    FindingState,
    Scan,
    Target,
)

ACTIVE_STATES = (FindingState.NEW, FindingState.OPEN, FindingState.REOPENED)


def _covered(keys: set[str], url: str, details: Any) -> bool:
    page = details.get("page") if isinstance(details, dict) else None
    return coverage_key(url) in keys or (isinstance(page, str) and coverage_key(page) in keys)


def absent_and_covered(target: Target, report: dict[str, Any], seen: Iterable[str]) -> list[int]:
    """Ids of the target's active scanned findings that this report no longer lists although
    the check that found each ran cleanly on its URL. A report without ``coverage`` (an engine
    from before it) fixes nothing."""
    clean = {c["name"] for c in report.get("checks", []) if c.get("status") == "ok"}
    coverage = report.get("coverage")
    if not clean or not isinstance(coverage, dict):
        return []
    covered = {str(name): set(keys) for name, keys in coverage.items() if isinstance(keys, list)}
    candidates = (
        Finding.objects.filter(
            target=target,
            state__in=ACTIVE_STATES,
            source=FindingSource.SCAN,
            check_name__in=clean,
        )
        .exclude(fingerprint__in=set(seen))
        .values_list("pk", "check_name", "url", "details")
    )
    return [
        pk
        for pk, check, url, details in candidates
        if _covered(covered.get(check, set()), url, details)
    ]


def _focus(finding: Finding, target: Target) -> tuple[str, str | None]:
    """Where a retest looks: the finding's URL (the page of a script finding), with the
    probed parameter in its query for checks that probe parameters; the target's base URL
    when that URL is outside the target's scope."""
    check = discover_checks()[finding.check_name]
    page = finding.details.get("page") if isinstance(finding.details, dict) else None
    url = page if isinstance(page, str) and page else finding.url
    parameter = finding.parameter or None if check.probes_parameters else None
    if parameter and parameter not in {k for k, _ in parse_qsl(urlsplit(url).query)}:
        url += ("&" if urlsplit(url).query else "?") + urlencode([(parameter, "/")])
    scope = Scope.for_target(
        target.base_url,
        include=tuple(target.include),
        exclude=tuple(target.exclude),
        extra_hosts=tuple(target.extra_hosts),
    )
    return (url if scope.contains(url) else target.base_url), parameter


def retest_profile(finding: Finding) -> str:
    scan = finding.last_seen_scan or finding.first_seen_scan
    return scan.profile if scan is not None else "lightning"


def start_retest(
    principal: Principal, finding: Finding, cluster: Cluster, *, queue: str = DEFAULT_QUEUE
) -> Scan:
    """Queue a scan job that runs only the finding's check on its URL and parameter."""
    from bastion.scanning.services import scan_payload

    target = finding.target
    organization = target.project.organization
    require_role(principal, organization, Role.MEMBER)
    if finding.source != FindingSource.SCAN or finding.check_name not in discover_checks():
        raise ValidationError(
            {"finding": ["Only findings a scan check reported can be retested by a scan."]}
        )
    if target.verified_at is None:
        raise ValidationError({"target": ["Verify the target's ownership before scanning it."]})
    profile = retest_profile(finding)
    focus_url, focus_parameter = _focus(finding, target)
    payload = scan_payload(target, profile) | {
        "checks": [finding.check_name],
        "focus_url": focus_url,
        "focus_parameter": focus_parameter,
    }
    with transaction.atomic():
        job = create_job(
            principal,
            organization,
            cluster,
            kind="scan",
            payload=payload,
            queue=queue,
            label=f"retest of finding #{finding.pk} ({finding.check_name})",
            origin="scanning",
        )
        scan = Scan.objects.create(
            target=target,
            profile=profile,
            job=job,
            created_by=principal.actor.label[:200],
            retest_of=finding,
        )
        audit.record(
            principal.actor,
            "finding.retest",
            organization=organization,
            target=finding,
            changes={"scan": scan.pk, "job": job.pk, "check": finding.check_name},
        )
    return scan


def retest_outcome(finding: Finding, report: dict[str, Any]) -> str:
    """``fixed``, ``still-open`` or ``inconclusive: <why>`` for a stored retest report."""
    if any(f.get("fingerprint") == finding.fingerprint for f in report.get("findings", [])):
        return "still-open"
    if finding.state == FindingState.FIXED:
        return "fixed"
    if report.get("error"):
        return f"inconclusive: {report['error']}"
    for check in report.get("checks", []):
        if check.get("name") == finding.check_name and check.get("status") != "ok":
            return f"inconclusive: the check ended {check.get('status')}: {check.get('message')}"
    return "inconclusive: the retest did not reach the finding's URL"


def record_retest_outcome(actor: Actor, scan: Scan, report: dict[str, Any]) -> str:
    """Note a finished retest on its finding (inside ``record_scan_result``'s transaction)."""
    assert scan.retest_of_id is not None
    finding = Finding.objects.get(pk=scan.retest_of_id)
    outcome = retest_outcome(finding, report)
    FindingComment.objects.create(
        finding=finding,
        author=None,
        author_label="retest",
        body=f"Retest (scan #{scan.pk}): {outcome}.",
    )
    audit.record(
        actor,
        "finding.retest_result",
        organization=scan.target.project.organization,
        target=finding,
        changes={"scan": scan.pk, "outcome": outcome, "state": finding.state},
    )
    return outcome
