"""The scanning API end to end through the real URLconf, auth and error mapping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import AuditEvent
from bastion.jobs import dispatch
from bastion.jobs import services as job_services
from bastion.jobs.logs import append_log
from bastion.jobs.models import Job
from bastion.scanning import signals, sla
from bastion.scanning.models import Finding, FindingComment, Scan, Target
from tests.api.conftest import ApiClient, Team, make_team
from tests.factories import make_project
from tests.scanning.helpers import scanning_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(db: None, settings: Any) -> Team:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_team("acme")


def test_targets_crud_and_verification(team: Team) -> None:
    make_project(team.org, slug="web")
    owner, viewer = team.as_owner(), team.as_viewer()
    body = {"project": "web", "name": "shop", "base_url": "http://127.0.0.1:9/"}

    assert viewer.post("/api/v1/organizations/acme/scan-targets", body).status == 403
    created = owner.post("/api/v1/organizations/acme/scan-targets", body)
    assert created.status == 201 and created.body["verified"] is False
    target_id = created.body["id"]
    url = f"/api/v1/organizations/acme/scan-targets/{target_id}"
    assert owner.post("/api/v1/organizations/acme/scan-targets", body).status == 400  # same name
    missing = owner.post("/api/v1/organizations/acme/scan-targets", {**body, "project": "nope"})
    assert missing.status == 404

    verified = owner.post(url + "/verify")
    assert verified.status == 200 and verified.body["verification_method"] == "allow-list"
    assert [t["id"] for t in viewer.get("/api/v1/organizations/acme/scan-targets").body] == [
        target_id
    ]

    patched = owner.patch(url, {"base_url": "http://127.0.0.1:10/", "exclude": ["*/admin/*"]})
    assert patched.status == 200 and patched.body["verified"] is False
    assert patched.body["exclude"] == ["*/admin/*"]
    assert owner.patch(url, {"environment": "moon"}).status == 400
    assert viewer.patch(url, {"name": "x"}).status == 403

    assert owner.delete(url).status == 204
    assert owner.get(url).status == 404
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"scan_target.create", "scan_target.verify", "scan_target.update"} <= actions
    assert "scan_target.delete" in actions


def test_start_scan_and_follow_its_progress(team: Team) -> None:
    project = make_project(team.org, slug="web")
    owner_principal = Principal.of_user(team.owner)
    cluster = job_services.create_cluster(owner_principal, team.org, name="default")
    agent_token = job_services.create_agent_token(owner_principal, cluster).plaintext
    target = Target.objects.create(project=project, name="t", base_url="http://127.0.0.1:9/")
    owner = team.as_owner()
    scans = f"/api/v1/organizations/acme/scan-targets/{target.pk}/scans"

    refused = owner.post(scans, {})
    assert refused.status == 400 and "Verify" in refused.raw.decode()
    owner.post(f"/api/v1/organizations/acme/scan-targets/{target.pk}/verify")
    assert team.as_viewer().post(scans, {}).status == 403
    started = owner.post(scans, {"profile": "lightning"})
    assert started.status == 201 and started.body["state"] == "queued"
    assert owner.post(scans, {"profile": "nope"}).status == 400

    job = Job.objects.get(pk=started.body["job_id"])
    assert job.kind == "scan" and job.origin == "scanning"
    agent = dispatch.register_agent(agent_token, name="a", tags={"queue": "default"}).agent
    assert dispatch.poll(agent) is not None
    dispatch.accept(agent, job.pk)
    dispatch.start(job)
    signals.sweep()
    assert Scan.objects.get(pk=started.body["id"]).state == "running"
    append_log(job, 0, "[scan] checks 3/12, 40 requests, 2 findings\n")
    status = owner.get(f"/api/v1/organizations/acme/scans/{started.body['id']}").body
    assert status["progress"] == {
        "checks_done": 3,
        "checks_total": 12,
        "requests_sent": 40,
        "findings": 2,
        "percent": 25,
    }
    assert [s["id"] for s in owner.get(scans).body] == [started.body["id"]]

    canceled = owner.post(f"/api/v1/organizations/acme/scans/{started.body['id']}/cancel")
    assert canceled.status == 200
    job.refresh_from_db()
    assert job.cancel_requested_at is not None


def test_findings_filter_triage_comments_and_overdue(team: Team) -> None:
    project = make_project(team.org, slug="web")
    target, _scan, finding = scanning_world(project)
    old_high = Finding.objects.create(
        target=target,
        fingerprint="finding:v1:old",
        type="cors-reflected-origin",
        title="CORS",
        severity="high",
        url=target.base_url,
        first_seen_at=timezone.now() - timedelta(days=20),
    )
    owner = team.as_owner()
    member = ApiClient(user=team.member)
    base = "/api/v1/organizations/acme/findings"

    assert {f["id"] for f in owner.get(base).body} == {finding.pk, old_high.pk}
    assert [f["id"] for f in owner.get(base + "?severity=high").body] == [old_high.pk]
    overdue = owner.get(base + "?overdue=true").body
    assert [f["id"] for f in overdue] == [old_high.pk] and overdue[0]["overdue"] is True
    assert owner.get(base + f"?target_id={target.pk}&state=new").status == 200

    detail = owner.get(f"{base}/{finding.pk}").body
    assert detail["evidence"] == "no Strict-Transport-Security header"
    assert detail["due_at"] is not None and detail["overdue"] is False

    triage = f"{base}/{old_high.pk}/triage"
    assert team.as_viewer().post(triage, {"triage": "false-positive"}).status == 403
    assert member.post(triage, {"triage": "accepted-risk"}).status == 400  # reason + expiry
    until = (timezone.now() + timedelta(days=30)).isoformat()
    accepted = member.post(
        triage,
        {
            "triage": "accepted-risk",
            "reason": "behind VPN",
            "accepted_until": until,
            "assignee": team.member.username,
        },
    )
    assert accepted.status == 200, accepted.body
    assert accepted.body["triage"] == "accepted-risk" and accepted.body["due_at"] is None
    assert accepted.body["assignee"] == team.member.username
    assert owner.get(base + "?overdue=true").body == []
    stranger = member.post(triage, {"triage": "", "assignee": "nobody"})
    assert stranger.status == 400

    comment = member.post(f"{base}/{old_high.pk}/comments", {"body": "VPN-only, see ticket 12"})
    assert comment.status == 201
    assert FindingComment.objects.get().author == team.member
    comments = owner.get(f"{base}/{old_high.pk}").body["comments"]
    assert [c["body"] for c in comments] == ["VPN-only, see ticket 12"]
    assert AuditEvent.objects.filter(action="finding.comment").count() == 1


def test_sla_days_are_configurable_and_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sla.sla_days() == {"critical": 2, "high": 14, "medium": 30, "low": 90}
    monkeypatch.setenv(sla.ENV, "critical=1, info=365")
    assert sla.sla_days()["critical"] == 1 and sla.sla_days()["info"] == 365
    assert sla.sla_days()["high"] == 14
    for bad in ("critical", "urgent=3", "high=-1", "low=soon"):
        with pytest.raises(ImproperlyConfigured):
            sla.parse_days(bad)


def test_list_queries_do_not_grow_with_rows(team: Team, django_assert_max_num_queries: Any) -> None:
    project = make_project(team.org, slug="web")
    target, scan, _finding = scanning_world(project)
    for n in range(5):
        Scan.objects.create(target=target, state="finished", requests_sent=n)
        Finding.objects.create(
            target=target, fingerprint=f"finding:v1:{n}", type="t", title="t",
            severity="low", url=target.base_url, last_seen_scan=scan,
        )  # fmt: skip
    owner = team.as_owner()
    owner.get("/api/v1/organizations/acme/findings")  # warm up the token's bookkeeping
    with django_assert_max_num_queries(8):
        scans = owner.get(f"/api/v1/organizations/acme/scan-targets/{target.pk}/scans")
    assert len(scans.body) == 6
    assert [s["progress"]["findings"] for s in scans.body if s["id"] == scan.pk] == [6]
    with django_assert_max_num_queries(8):
        findings = owner.get("/api/v1/organizations/acme/findings?severity=low")
    assert len(findings.body) == 5
