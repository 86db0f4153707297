"""Named actions on targets, scans and findings; each runs in one transaction and is audited."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from bastion.core import audit, crypto
from bastion.core.access import Principal, require_role
from bastion.core.context import Actor
from bastion.core.models import Project, Role, User
from bastion.jobs.dispatch import DEFAULT_QUEUE, create_job
from bastion.jobs.logs import read_log
from bastion.jobs.models import ACTIVE_STATES as ACTIVE_JOB_STATES
from bastion.jobs.models import FINISHED_STATES as FINISHED_JOB_STATES
from bastion.jobs.models import Cluster, Job, JobState
from bastion.scanning import dns as scan_dns
from bastion.scanning.engine.errors import EngineError
from bastion.scanning.engine.http import HttpClient, HttpLimits
from bastion.scanning.engine.policy import AddressPolicy, Scope
from bastion.scanning.engine.profiles import discover_profiles
from bastion.scanning.engine.report import RESULT_MARKER
from bastion.scanning.lifecycle import absent_and_covered, record_retest_outcome
from bastion.scanning.models import (
    Environment,
    Finding,
    FindingState,
    Scan,
    ScanState,
    Target,
    Triage,
    VerificationMethod,
)

VERIFICATION_PATH = ".well-known/bastion-verification.txt"
VERIFICATION_HEADER = "X-Bastion-Verification"
ACTIVE_STATES = (FindingState.NEW, FindingState.OPEN, FindingState.REOPENED)


def _validate_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError({"base_url": ["Enter an http:// or https:// URL with a host."]})


def _patterns(values: Iterable[str], field: str) -> list[str]:
    out = [str(v).strip() for v in values if str(v).strip()]
    if any(len(v) > 500 for v in out) or len(out) > 100:
        raise ValidationError({field: ["At most 100 patterns of at most 500 characters."]})
    return out


def create_target(
    principal: Principal,
    project: Project,
    *,
    name: str,
    base_url: str,
    environment: str = Environment.STAGING,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    extra_hosts: Iterable[str] = (),
    rate_limit: float = 0.0,
    concurrency: int = 0,
    auth: dict[str, Any] | None = None,
) -> Target:
    require_role(principal, project.organization, Role.ADMIN)
    _validate_url(base_url)
    if environment not in Environment.values:
        raise ValidationError({"environment": [f"Choose one of {', '.join(Environment.values)}."]})
    if rate_limit < 0 or not 0 <= concurrency <= 64:
        raise ValidationError({"rate_limit": ["Rate must be >= 0 and concurrency 0..64."]})
    if Target.objects.filter(project=project, name=name).exists():
        raise ValidationError({"name": ["A target with that name already exists here."]})
    with transaction.atomic():
        target = Target.objects.create(
            project=project,
            name=name,
            base_url=base_url,
            environment=environment,
            include=_patterns(include, "include"),
            exclude=_patterns(exclude, "exclude"),
            extra_hosts=_patterns(extra_hosts, "extra_hosts"),
            rate_limit=rate_limit,
            concurrency=concurrency,
            auth_encrypted=crypto.encrypt(json.dumps(auth)) if auth else "",
        )
        audit.record(
            principal.actor,
            "scan_target.create",
            organization=project.organization,
            target=target,
            changes={"base_url": base_url, "environment": environment, "auth": bool(auth)},
        )
    return target


def _allow_hosts() -> tuple[str, ...]:
    return tuple(settings.CONFIG.scan_allow_hosts)


def _allow_listed(target: Target) -> bool:
    policy = AddressPolicy.from_allow_list(_allow_hosts())
    host = (urlsplit(target.base_url).hostname or "").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host in policy.allow_hostnames
    return any(ip in net for net in policy.allow_networks)


async def _fetch_proof(target: Target) -> VerificationMethod | None:
    policy = AddressPolicy.from_allow_list(_allow_hosts())
    base = target.base_url.rstrip("/") + "/"
    limits = HttpLimits(max_requests=2, max_body_bytes=4096, request_total_s=10.0)
    async with HttpClient(policy, Scope.for_target(base), limits) as http:
        try:
            response = await http.get(base + VERIFICATION_PATH)
            if response.status == 200 and target.verification_token in response.text:
                return VerificationMethod.WELL_KNOWN_FILE
            response = await http.get(base)
            if response.headers.get(VERIFICATION_HEADER, "").strip() == target.verification_token:
                return VerificationMethod.HEADER
        except EngineError:
            return None
    return None


def verify_target(principal: Principal, target: Target) -> Target:
    """Prove ownership: the token in /.well-known/bastion-verification.txt, in a response
    header, or in a DNS TXT record (``dns.py``); hosts on the administrator allow-list
    (BASTION_SCAN_ALLOW_HOSTS) count as verified."""
    require_role(principal, target.project.organization, Role.ADMIN)
    method = asyncio.run(_fetch_proof(target))
    txt = None
    if method is None:
        txt = scan_dns.find_token(
            urlsplit(target.base_url).hostname or "", target.verification_token
        )
        method = VerificationMethod.DNS if txt.found else None
    if method is None and _allow_listed(target):
        method = VerificationMethod.ALLOW_LIST
    if method is None:
        raise ValidationError(
            {
                "verification": [
                    f"Put the token in {target.base_url.rstrip('/')}/{VERIFICATION_PATH}, send it "
                    f"in the {VERIFICATION_HEADER} response header, or publish the DNS TXT record "
                    f"{scan_dns.RECORD_PREFIX}<token> on the host or on "
                    f"{scan_dns.SUBDOMAIN}.<host>, then verify again"
                    + (f" ({txt.problem})." if txt and txt.problem else ".")
                ]
            }
        )
    with transaction.atomic():
        target.verification_method = method
        target.verified_at = timezone.now()
        target.save(update_fields=["verification_method", "verified_at"])
        audit.record(
            principal.actor,
            "scan_target.verify",
            organization=target.project.organization,
            target=target,
            changes={"method": method, **({"dns_name": txt.name} if txt and txt.found else {})},
        )
    return target


def scan_payload(target: Target, profile: str) -> dict[str, Any]:
    """The frozen contract between the server and the agent's scan executor."""
    return {
        "target": target.base_url,
        "profile": profile,
        "include": list(target.include),
        "exclude": list(target.exclude),
        "extra_hosts": list(target.extra_hosts),
        "allow_hosts": list(_allow_hosts()),
        "rate_per_s": target.rate_limit or None,
        "concurrency": target.concurrency or None,
        # The agent uploads the executor's report as the job's artifact (see _report_of).
        "artifact_paths": [REPORT_ARTIFACT],
    }


def start_scan(
    principal: Principal,
    target: Target,
    cluster: Cluster,
    *,
    profile: str = "lightning",
    queue: str = DEFAULT_QUEUE,
) -> Scan:
    require_role(principal, target.project.organization, Role.MEMBER)
    if target.verified_at is None:
        raise ValidationError({"target": ["Verify the target's ownership before scanning it."]})
    if profile not in discover_profiles():
        raise ValidationError({"profile": [f"Unknown profile {profile!r}."]})
    organization = target.project.organization
    with transaction.atomic():
        job = create_job(
            principal,
            organization,
            cluster,
            kind="scan",
            payload=scan_payload(target, profile),
            queue=queue,
            label=f"{profile} scan of {target.name}",
            origin="scanning",
        )
        scan = Scan.objects.create(
            target=target, profile=profile, job=job, created_by=principal.actor.label[:200]
        )
        audit.record(
            principal.actor,
            "scan.start",
            organization=organization,
            target=scan,
            changes={"target": target.name, "profile": profile, "job": job.pk},
        )
    return scan


@dataclass(frozen=True)
class Ingested:
    new: int
    reopened: int
    seen_again: int
    fixed: int


def _apply_finding(scan: Scan, data: dict[str, Any], now: datetime) -> str:
    fields = {
        "fingerprint_version": str(data["fingerprint"]).rsplit(":", 1)[0],
        "type": data["type"],
        "title": data["title"][:300],
        "severity": data["severity"],
        "cwe": data["cwe"],
        "owasp": data["owasp"],
        "confidence": data["confidence"],
        "url": data["url"],
        "method": data["method"],
        "parameter": data["parameter"] or "",
        "evidence": data["evidence"],
        "request": data["request"],
        "response": data["response"],
        "remediation": data["remediation"],
        "details": data.get("details") or {},
        "check_name": data.get("check", ""),
        "last_seen_scan": scan,
        "last_seen_at": now,
    }
    finding = Finding.objects.filter(target=scan.target, fingerprint=data["fingerprint"]).first()
    if finding is None:
        Finding.objects.create(
            target=scan.target,
            fingerprint=data["fingerprint"],
            first_seen_scan=scan,
            first_seen_at=now,
            **fields,
        )
        return "new"
    outcome = "seen_again"
    if finding.state == FindingState.FIXED:
        fields.update(state=FindingState.REOPENED, fixed_at=None)
        outcome = "reopened"
    elif finding.state == FindingState.NEW:
        fields["state"] = FindingState.OPEN
    for key, value in fields.items():
        setattr(finding, key, value)
    finding.save()
    return outcome


def record_scan_result(actor: Actor, scan: Scan, report: dict[str, Any]) -> Ingested:
    """Store an engine report (``engine.report.to_json``): upsert findings by fingerprint,
    mark as fixed the active findings of checks that ran cleanly and no longer report them."""
    now = timezone.now()
    counts = {"new": 0, "reopened": 0, "seen_again": 0}
    with transaction.atomic():
        # Claim the scan first: the post-commit hook and the scheduler's sweep may both store
        # the same report; the second finds the scan settled and stores nothing.
        settled = (ScanState.FINISHED, ScanState.FAILED, ScanState.CANCELED)
        final = ScanState.FAILED if report.get("error") else ScanState.FINISHED
        claim = Scan.objects.filter(pk=scan.pk).exclude(state__in=settled)
        if not claim.update(state=final, finished_at=now):
            return Ingested(0, 0, 0, 0)
        seen: set[str] = set()
        for data in report.get("findings", []):
            counts[_apply_finding(scan, data, now)] += 1
            seen.add(data["fingerprint"])
        fixed = Finding.objects.filter(pk__in=absent_and_covered(scan.target, report, seen)).update(
            state=FindingState.FIXED, fixed_at=now
        )
        scan.state = ScanState.FAILED if report.get("error") else ScanState.FINISHED
        scan.error = report.get("error") or ""
        scan.requests_sent = int(report.get("requests_sent") or 0)
        scan.checks = report.get("checks", [])
        scan.finished_at = now
        scan.save()
        result = Ingested(counts["new"], counts["reopened"], counts["seen_again"], fixed)
        audit.record(
            actor,
            "scan.finish",
            organization=scan.target.project.organization,
            target=scan,
            changes={"state": scan.state, **result.__dict__},
        )
        if scan.retest_of_id is not None:
            record_retest_outcome(actor, scan, report)
    return result


def triage_finding(
    principal: Principal,
    finding: Finding,
    *,
    triage: str,
    reason: str = "",
    accepted_until: datetime | None = None,
    assignee: User | None = None,
) -> Finding:
    organization = finding.target.project.organization
    require_role(principal, organization, Role.MEMBER)
    if triage not in Triage.values:
        raise ValidationError(
            {"triage": [f"Choose one of {', '.join(t or '(none)' for t in Triage.values)}."]}
        )
    if triage == Triage.ACCEPTED_RISK and (
        not reason.strip() or accepted_until is None or accepted_until <= timezone.now()
    ):
        raise ValidationError(
            {"accepted_until": ["An accepted risk needs a reason and a future expiry."]}
        )
    if assignee is not None and not assignee.memberships.filter(organization=organization).exists():
        raise ValidationError({"assignee": ["The assignee must be a member of this organization."]})
    with transaction.atomic():
        before = {"triage": finding.triage, "assignee": finding.assignee_id}
        finding.triage = triage
        finding.triage_reason = reason
        finding.accepted_until = accepted_until if triage == Triage.ACCEPTED_RISK else None
        finding.assignee = assignee
        finding.save(update_fields=["triage", "triage_reason", "accepted_until", "assignee"])
        audit.record(
            principal.actor,
            "finding.triage",
            organization=organization,
            target=finding,
            changes={
                "before": before,
                "triage": triage,
                "reason": reason,
                "accepted_until": accepted_until,
                "assignee": finding.assignee_id,
            },
        )
    return finding


def reopen_expired_risks(now: datetime | None = None) -> int:
    """Accepted risks whose expiry passed are reopened (run by the scheduler)."""
    now = now or timezone.now()
    count = 0
    expired = Finding.objects.filter(triage=Triage.ACCEPTED_RISK, accepted_until__lte=now)
    for finding in expired.select_related("target__project__organization"):
        with transaction.atomic():
            finding.triage = Triage.NONE
            if finding.state != FindingState.FIXED:
                finding.state = FindingState.REOPENED
            finding.save(update_fields=["triage", "state"])
            audit.record(
                Actor.system("scheduler"),
                "finding.risk_expired",
                organization=finding.target.project.organization,
                target=finding,
                changes={"accepted_until": finding.accepted_until},
            )
            count += 1
    return count


REPORT_ARTIFACT = "scan-result.json"


def _report_of(job: Job) -> dict[str, Any] | None:
    """The engine report a scan job left: its ``scan-result.json`` artifact if the agent
    uploaded one, else the result line of its log (``executor.RESULT_MARKER``)."""
    artifact = job.artifacts.filter(path=REPORT_ARTIFACT).first()
    if artifact is not None:
        with artifact.file.open("rb") as handle:
            data: dict[str, Any] = json.loads(handle.read())
            return data
    text = "".join(chunk for _, chunk in read_log(job))
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                parsed: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            except ValueError:
                return None
            return parsed
    return None


def sync_scan_from_job(actor: Actor, scan: Scan) -> Scan:
    """Bring a scan up to date with its job: running, or finished with its report stored."""
    job = scan.job
    if job is None or scan.state in (ScanState.FINISHED, ScanState.FAILED, ScanState.CANCELED):
        return scan
    job.refresh_from_db()
    if job.state in ACTIVE_JOB_STATES and scan.state == ScanState.QUEUED:
        with transaction.atomic():
            scan.state = ScanState.RUNNING
            scan.started_at = job.started_at or timezone.now()
            scan.save(update_fields=["state", "started_at"])
            audit.record(
                actor,
                "scan.running",
                organization=scan.target.project.organization,
                target=scan,
                changes={"job": job.pk},
            )
        return scan
    if job.state not in FINISHED_JOB_STATES:
        return scan
    report = _report_of(job)
    if job.state == JobState.CANCELED or report is None:
        with transaction.atomic():
            scan.state = ScanState.CANCELED if job.state == JobState.CANCELED else ScanState.FAILED
            scan.error = (
                ""
                if job.state == JobState.CANCELED
                else (f"the scan job ended ({job.state}) without a report")
            )
            scan.finished_at = timezone.now()
            scan.save(update_fields=["state", "error", "finished_at"])
            audit.record(
                actor,
                "scan.finish",
                organization=scan.target.project.organization,
                target=scan,
                changes={"state": scan.state, "job_state": job.state},
            )
        return scan
    record_scan_result(actor, scan, report)
    scan.refresh_from_db()
    return scan
