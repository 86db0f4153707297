"""Review audit: each opening of an issue page is recorded, "Mark reviewed" (with a comment) is
audited, and the review-coverage page and its CSV/JSON exports say, for a period, which issues
were new or regressed, who viewed and reviewed each and how soon, and which never were."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.errors import services
from bastion.errors.models import Issue, IssueReview, IssueView
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.factories import make_member


def _issue(client: Client, setup: Setup, kind: str) -> Issue:
    send_event(client, setup, exception={"values": [{"type": kind, "value": "boom"}]})
    return Issue.objects.get(project=setup.project, title__startswith=kind)


def test_opening_an_issue_is_recorded_and_mark_reviewed_is_audited(
    client: Client, setup: Setup
) -> None:
    issue = _issue(client, setup, "KeyError")
    viewer = make_member(setup.org, Role.VIEWER)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/issues/{issue.pk}/"
    client.force_login(viewer)
    assert client.get(base).status_code == 200
    assert client.post(base + "review/", {"comment": "ok"}).status_code == 403
    client.force_login(setup.owner)
    client.get(base)
    client.get(base)
    seen = list(IssueView.objects.filter(issue=issue).values_list("user__username", flat=True))
    assert sorted(seen) == sorted([viewer.username, setup.owner.username, setup.owner.username])
    response = client.post(base + "review/", {"comment": "  known flaky upstream  "})
    assert response.status_code == 302
    review = IssueReview.objects.get(issue=issue)
    assert (review.user, review.comment) == (setup.owner, "known flaky upstream")
    row = AuditEvent.objects.get(action="errors.issue.reviewed")
    assert row.object_id == str(issue.pk) and row.changes == {"comment": "known flaky upstream"}
    page = client.get(base).content.decode()
    assert "known flaky upstream" in page and "Opened 4 times" in page
    assert client.post(base + "review/", {"comment": "x" * 5001}).status_code == 302
    assert IssueReview.objects.filter(issue=issue).count() == 1  # too long: refused


def test_review_pages_are_scoped(client: Client, setup: Setup) -> None:
    issue = _issue(client, setup, "KeyError")
    other = make_setup()
    client.force_login(other.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/"
    assert client.get(base + "review-coverage/").status_code == 404
    assert client.get(base + "review-coverage/?format=csv").status_code == 404
    assert client.post(f"{base}issues/{issue.pk}/review/", {}).status_code == 404
    theirs = f"/o/{other.org.slug}/errors/{other.project.slug}/issues/{issue.pk}/review/"
    assert client.post(theirs, {}).status_code == 404
    assert not IssueReview.objects.exists() and not IssueView.objects.exists()


def test_review_coverage_page_and_exports(client: Client, setup: Setup) -> None:
    owner = Principal.of_user(setup.owner)
    reviewer = make_member(setup.org, Role.MEMBER)
    now = timezone.now()
    reviewed = _issue(client, setup, "ReviewedError")
    never = _issue(client, setup, "=NeverReviewedError")
    regressed = _issue(client, setup, "RegressedError")
    old = _issue(client, setup, "OldError")
    # Move history back in time: two issues appeared long ago, one of them regressed now.
    long_ago = now - timedelta(days=40)
    Issue.objects.filter(pk__in=[regressed.pk, old.pk]).update(first_seen=long_ago)
    services.mark_reviewed(owner, regressed, "looked at the first occurrence")
    IssueReview.objects.filter(issue=regressed).update(reviewed_at=long_ago + timedelta(hours=1))
    services.resolve_issue(owner, regressed)
    send_event(client, setup, exception={"values": [{"type": "RegressedError", "value": "boom"}]})
    # The reviewed one: opened by the reviewer, then reviewed.
    client.force_login(reviewer)
    client.get(f"/o/{setup.org.slug}/errors/{setup.project.slug}/issues/{reviewed.pk}/")
    services.mark_reviewed(Principal.of_user(reviewer), reviewed, "fixed in #12")

    client.force_login(setup.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/review-coverage/"
    page = client.get(base)
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-testid="coverage-row"') == 3  # not OldError
    assert "OldError" not in html
    assert html.count('data-testid="never-reviewed"') == 2  # a review before a regression is stale
    assert "3 new or regressed issues, 1 reviewed, 2 never reviewed" in html

    data = json.loads(client.get(base + "?format=json").content)
    rows = {row["title"].split(":")[0]: row for row in data["rows"]}
    assert data["issues"] == 3 and data["reviewed"] == 1
    assert sorted(data["never_reviewed"]) == sorted([never.pk, regressed.pk])
    assert rows["ReviewedError"]["kind"] == "new" and rows["ReviewedError"]["reviewed"]
    assert rows["ReviewedError"]["viewers"][0]["user"] == reviewer.username
    assert rows["ReviewedError"]["reviews"][0]["comment"] == "fixed in #12"
    assert rows["ReviewedError"]["first_review_after_seconds"] >= 0
    assert rows["RegressedError"]["kind"] == "regressed"
    assert rows["RegressedError"]["reviews"] == []

    export = client.get(base + "?format=csv")
    assert export["Content-Type"].startswith("text/csv")
    assert "attachment" in export["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert len(table) == 3
    by_id = {int(row["issue_id"]): row for row in table}
    assert by_id[reviewed.pk]["reviewed"] == "yes"
    assert reviewer.username in by_id[reviewed.pk]["viewed_by"]
    assert by_id[never.pk]["reviewed"] == "no"
    assert by_id[never.pk]["title"].startswith("'=")  # no spreadsheet formula

    # A period that ends before anything happened: empty; a bad date falls back to the default.
    earlier = (now - timedelta(days=100)).date().isoformat()
    assert (
        "No new or regressed" in client.get(f"{base}?from={earlier}&to={earlier}").content.decode()
    )
    assert client.get(base + "?from=garbage&to=2026-13-45").status_code == 200
    wide = (now - timedelta(days=60)).date().isoformat()
    wide_data = json.loads(client.get(f"{base}?from={wide}&format=json").content)
    assert wide_data["issues"] == 4
