"""Assignment and comments of issues: the actions (validation, audit, the assignee's email),
the search filters, the API (PATCH, bulk PATCH, comments) and the pages; plus the alert of an
issue whose first events an ignore rule suppressed."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from bastion.browser.models import MailMessage
from bastion.core import services as core_services
from bastion.core.access import Principal
from bastion.core.models import (
    AuditEvent,
    Membership,
    NotificationChannel,
    NotificationDelivery,
    Role,
)
from bastion.core.notifications import create_channel
from bastion.errors import access, collaboration, coverage, services
from bastion.errors.models import Issue, IssueComment, RuleKind
from tests.api.conftest import ApiClient
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.errors.receivers import smtp_to_sink
from tests.errors.test_api_cli import _token
from tests.factories import make_member


def _issues(client: Client, setup: Setup, *kinds: str) -> list[Issue]:
    for kind in kinds:
        send_event(client, setup, exception={"values": [{"type": kind, "value": "boom"}]})
    return [Issue.objects.get(project=setup.project, title__startswith=k) for k in kinds]


def _owner(setup: Setup) -> Principal:
    return Principal.of_user(setup.owner)


def _assigned_mail() -> list[NotificationDelivery]:
    return list(NotificationDelivery.objects.filter(topic="errors.issue.assigned").order_by("pk"))


def test_assign_audits_notifies_the_assignee_and_refuses_strangers(
    client: Client, setup: Setup
) -> None:
    bob = make_member(setup.org, Role.MEMBER, "bob")
    stranger = make_setup().owner  # the owner of another organization
    [issue] = _issues(client, setup, "PaymentError")

    assigned = collaboration.assign_issue(_owner(setup), issue, bob)
    assert assigned.assignee == bob
    row = AuditEvent.objects.get(action="errors.issue.assign")
    assert row.changes == {"assignee": {"before": None, "after": "bob"}}
    [mail] = _assigned_mail()
    assert mail.recipient == bob and mail.channel is None
    assert mail.subject.startswith(f"{setup.owner.username} assigned you an issue")
    assert mail.url.endswith(f"/issues/{issue.pk}/") and mail.data["issue_ids"] == [issue.pk]

    # Assigning again to the same person changes (and sends) nothing.
    collaboration.assign_issue(_owner(setup), issue, bob)
    assert AuditEvent.objects.filter(action="errors.issue.assign").count() == 1
    assert len(_assigned_mail()) == 1

    viewer = make_member(setup.org, Role.VIEWER)
    audited = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        collaboration.assignee_named(setup.org, stranger.username)
    with pytest.raises(ValidationError):
        collaboration.assign_issue(_owner(setup), issue, stranger)
    with pytest.raises(PermissionDenied):
        collaboration.assign_issue(Principal.of_user(viewer), issue, None)
    issue.refresh_from_db()
    assert issue.assignee == bob and AuditEvent.objects.count() == audited

    # Bob takes it himself: no email to himself; then unassigns.
    collaboration.assign_issue(Principal.of_user(setup.owner), issue, setup.owner)
    collaboration.assign_issue(Principal.of_user(bob), issue, bob)
    collaboration.assign_issue(Principal.of_user(bob), issue, None)
    assert [m.recipient for m in _assigned_mail()] == [bob]
    issue.refresh_from_db()
    assert issue.assignee is None


@pytest.mark.django_db(transaction=True)
def test_the_assignee_gets_a_real_email() -> None:
    setup = make_setup()
    bob = make_member(setup.org, Role.MEMBER, "bob-mail")
    first, second = (
        Issue.objects.create(
            project=setup.project,
            grouping_version="test:v1",
            grouping_hash=f"{n:064d}",
            title=f"KeyError: item {n}",
            first_seen=timezone.now(),
            last_seen=timezone.now(),
        )
        for n in (1, 2)
    )
    with smtp_to_sink():
        collaboration.assign_issues(_owner(setup), [first, second], bob)
    mail = MailMessage.objects.get(inbox="bob-mail@example.test")
    assert mail.subject == f"[Bastion] {setup.owner.username} assigned you 2 issues in Project"
    raw = bytes(mail.raw)
    assert b"KeyError: item 1" in raw and b"KeyError: item 2" in raw
    assert b"assigned:bob-mail" in raw
    assert NotificationDelivery.objects.get().status == "sent"


def test_search_filters_by_assignee(client: Client, setup: Setup) -> None:
    bob = make_member(setup.org, Role.MEMBER, "bob")
    mine, bobs, nobodys = _issues(client, setup, "MineError", "BobError", "NobodyError")
    owner = _owner(setup)
    collaboration.assign_issue(owner, mine, setup.owner)
    collaboration.assign_issue(owner, bobs, bob)

    def found(query: str, principal: Principal = owner) -> set[int]:
        slug = setup.project.slug
        return set(access.issues_for(principal, setup.org.slug, slug, query=query).values_list(
            "pk", flat=True
        ))  # fmt: skip

    assert found("assigned:me") == {mine.pk}
    assert found("assigned:me", Principal.of_user(bob)) == {bobs.pk}
    assert found("assigned:bob") == {bobs.pk}
    assert found("assigned:nobody-by-that-name") == set()
    assert found("is:unassigned") == {nobodys.pk}
    assert found("is:assigned Error") == {mine.pk, bobs.pk}
    assert found("is:unresolved assigned:bob BobError") == {bobs.pk}


def _url(setup: Setup, tail: str = "") -> str:
    return f"/organizations/{setup.org.slug}/projects/{setup.project.slug}/issues{tail}"


def test_api_assigns_one_or_many_issues(client: Client, setup: Setup) -> None:
    bob = make_member(setup.org, Role.MEMBER, "bob")
    other = make_setup()
    first, second = _issues(client, setup, "PaymentError", "StockError")
    [theirs] = _issues(client, other, "TheirError")
    api = ApiClient(token=_token(setup))

    got = api.patch(_url(setup, f"/{first.pk}"), {"assignee": "bob"})
    assert got.status == 200 and got.body["assignee"] == "bob"
    assert api.patch(_url(setup, f"/{first.pk}"), {}).body["assignee"] == "bob"  # left out
    assert api.get(_url(setup, f"/{first.pk}")).body["assignee"] == "bob"
    listed = api.get(_url(setup, "?query=assigned%3Abob"))
    assert [i["id"] for i in listed.body["items"]] == [first.pk]

    audited = AuditEvent.objects.count()
    refused = api.patch(_url(setup, f"/{first.pk}"), {"assignee": other.owner.username})
    assert refused.status == 400 and "member" in str(refused.body)
    assert api.patch(_url(setup, f"/{theirs.pk}"), {"assignee": "bob"}).status == 404
    theirs_url = f"/organizations/{other.org.slug}/projects/{other.project.slug}/issues"
    assert api.patch(f"{theirs_url}/{theirs.pk}", {"assignee": None}).status == 404
    bulk_theirs = api.patch(_url(setup), {"ids": [second.pk, theirs.pk], "assignee": "bob"})
    assert bulk_theirs.status == 404
    assert AuditEvent.objects.count() == audited

    bulk = api.patch(
        _url(setup), {"ids": [first.pk, second.pk], "status": "resolved", "assignee": None}
    )
    assert bulk.status == 200
    assert [(i["id"], i["status"], i["assignee"]) for i in bulk.body] == [
        (first.pk, "resolved", None),
        (second.pk, "resolved", None),
    ]
    bulk = api.patch(_url(setup), {"ids": [second.pk], "assignee": "bob"})
    assert bulk.body[0]["assignee"] == "bob" and bulk.body[0]["status"] == "resolved"
    # All or none: a stranger as assignee refuses the whole change, status included.
    refused = api.patch(
        _url(setup), {"ids": [first.pk], "status": "ignored", "assignee": other.owner.username}
    )
    assert refused.status == 400
    first.refresh_from_db()
    assert first.status == "resolved" and first.assignee is None
    viewer = ApiClient(token=_token(setup, Role.VIEWER))
    assert viewer.patch(_url(setup, f"/{second.pk}"), {"assignee": None}).status == 403
    assert viewer.patch(_url(setup), {"ids": [second.pk], "assignee": None}).status == 403
    assert Issue.objects.get(pk=second.pk).assignee == bob


def test_api_comments_list_create_and_delete(client: Client, setup: Setup) -> None:
    member = make_member(setup.org, Role.MEMBER, "mia")
    admin = make_member(setup.org, Role.ADMIN, "ada")
    [issue] = _issues(client, setup, "PaymentError")
    comments = _url(setup, f"/{issue.pk}/comments")
    as_member = ApiClient(user=member)

    made = as_member.post(comments, {"body": "  Looks like the\nretry loop.  "})
    assert made.status == 201
    assert made.body["body"] == "Looks like the\nretry loop." and made.body["author"] == "mia"
    second = ApiClient(user=admin).post(comments, {"body": "Agreed."}).body
    assert [c["author"] for c in as_member.get(comments).body] == ["mia", "ada"]
    issue.refresh_from_db()
    assert issue.comment_count == 2
    assert as_member.post(comments, {"body": "   "}).status == 400
    assert ApiClient(token=_token(setup, Role.VIEWER)).post(comments, {"body": "x"}).status == 403

    # The author or an admin may delete; another member may not.
    assert as_member.delete(f"{comments}/{second['id']}").status == 403
    assert ApiClient(user=admin).delete(f"{comments}/{made.body['id']}").status == 204
    assert ApiClient(user=admin).delete(f"{comments}/{second['id']}").status == 204
    assert not IssueComment.objects.exists()
    issue.refresh_from_db()
    assert issue.comment_count == 0
    actions = list(
        AuditEvent.objects.filter(action__startswith="errors.issue.comment").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["errors.issue.comment"] * 2 + ["errors.issue.comment.delete"] * 2

    other = make_setup()
    [theirs] = _issues(client, other, "TheirError")
    their_comment = collaboration.add_comment(Principal.of_user(other.owner), theirs, "mine")
    assert ApiClient(user=admin).delete(f"{comments}/{their_comment.pk}").status == 404
    theirs_url = f"/organizations/{other.org.slug}/projects/{other.project.slug}/issues"
    assert ApiClient(user=admin).get(f"{theirs_url}/{theirs.pk}/comments").status == 404
    assert IssueComment.objects.filter(pk=their_comment.pk).exists()


def test_pages_assign_comment_and_bulk_assign(client: Client, setup: Setup) -> None:
    bob = make_member(setup.org, Role.MEMBER, "bob")
    first, second = _issues(client, setup, "PaymentError", "StockError")
    client.force_login(setup.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}"

    page = client.post(f"{base}/issues/{first.pk}/assign/", {"assignee": "bob"}, follow=True)
    assert b"Assigned to bob." in page.content
    stranger = make_setup().owner.username
    page = client.post(f"{base}/issues/{first.pk}/assign/", {"assignee": stranger}, follow=True)
    assert b"must be a member" in page.content
    assert Issue.objects.get(pk=first.pk).assignee == bob

    text = "<script>alert(1)</script>\nsecond line"
    client.post(f"{base}/issues/{first.pk}/comments/", {"body": text})
    html = client.get(f"{base}/issues/{first.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>second line" in html
    assert "<script>alert(1)" not in html
    assert '<option value="bob" selected>bob</option>' in html

    client.post(
        f"{base}/issues/bulk/", {"issue": [first.pk, second.pk], "action": "assign", "assignee": ""}
    )
    assert set(Issue.objects.values_list("assignee", flat=True)) == {None}
    page = client.post(
        f"{base}/issues/bulk/",
        {"issue": [first.pk, second.pk], "action": "assign", "assignee": "bob"},
        follow=True,
    )
    assert b"2 issues assigned to bob." in page.content
    listed = client.get(f"{base}/", {"q": "assigned:bob"}).content.decode()
    assert listed.count('data-testid="issue-row"') == 2
    assert (
        '<td data-testid="assignee">bob</td>' in listed and 'data-testid="comment-count"' in listed
    )
    unassigned = client.get(f"{base}/", {"assignee": "-"}).content.decode()
    assert unassigned.count('data-testid="issue-row"') == 0

    core_services.remove_member(
        _owner(setup), Membership.objects.get(organization=setup.org, user=bob)
    )
    html = client.get(f"{base}/issues/{first.pk}/").content.decode()
    assert "bob (no longer a member)" in html and '<option value="bob"' not in html


def test_pages_of_another_organization_are_404_and_viewers_change_nothing(
    client: Client, setup: Setup
) -> None:
    other = make_setup()
    [theirs] = _issues(client, other, "TheirError")
    comment = collaboration.add_comment(Principal.of_user(other.owner), theirs, "theirs")
    viewer = make_member(other.org, Role.VIEWER)
    client.force_login(setup.owner)
    audited = AuditEvent.objects.count()
    for org in (setup.org.slug, other.org.slug):
        base = f"/o/{org}/errors/{other.project.slug}/issues/{theirs.pk}"
        posts = {
            f"{base}/assign/": {"assignee": setup.owner.username},
            f"{base}/comments/": {"body": "hello"},
            f"{base}/comments/{comment.pk}/delete/": {},
        }
        for url, data in posts.items():
            assert client.post(url, data).status_code == 404, url
    client.force_login(viewer)
    base = f"/o/{other.org.slug}/errors/{other.project.slug}/issues/{theirs.pk}"
    assert client.post(f"{base}/comments/", {"body": "x"}).status_code == 403
    assert client.post(f"{base}/comments/{comment.pk}/delete/").status_code == 403
    assert client.post(f"{base}/assign/", {"assignee": ""}).status_code == 403
    page = client.get(f"{base}/").content.decode()
    assert "theirs" in page and 'data-testid="assign-form"' not in page
    assert AuditEvent.objects.count() == audited
    assert IssueComment.objects.count() == 1 and Issue.objects.get(pk=theirs.pk).assignee is None


def test_review_coverage_exports_the_assignee(client: Client, setup: Setup) -> None:
    first, second = _issues(client, setup, "PaymentError", "StockError")
    bob = make_member(setup.org, Role.MEMBER, "bob")
    collaboration.assign_issue(_owner(setup), first, bob)
    report = coverage.review_coverage(setup.project, coverage.parse_period("", ""))
    rows = {r["issue_id"]: r for r in coverage.as_json(report)["rows"]}
    assert rows[first.pk]["assignee"] == "bob" and rows[second.pk]["assignee"] == ""
    lines = coverage.as_csv(report).splitlines()
    assert lines[0].endswith(",assignee") and any(line.endswith(",bob") for line in lines)


def _alert_channel(setup: Setup) -> NotificationChannel:
    return create_channel(
        _owner(setup),
        setup.org,
        name="alerts",
        kind="webhook",
        target="http://127.0.0.1:9/alerts",
        topics=["errors.issue.*"],
    )


def test_an_issue_first_suppressed_alerts_once_at_its_first_unsuppressed_event(
    client: Client, setup: Setup
) -> None:
    _alert_channel(setup)
    services.create_ignore_rule(
        _owner(setup), setup.project, kind=RuleKind.TAG, value="noise=yes", reason="load test"
    )

    def send(noise: str) -> None:
        send_event(client, setup, environment="production", tags={"noise": noise})

    send("yes")
    send("yes")
    issue = Issue.objects.get()
    assert (issue.event_count, issue.suppressed_count) == (2, 2)
    assert not NotificationDelivery.objects.exists()
    send("no")
    [alert] = NotificationDelivery.objects.all()
    assert alert.data["issue_id"] == issue.pk
    assert sorted(alert.data["kinds"]) == ["new", "unexpected"]
    send("no")
    send("yes")
    assert NotificationDelivery.objects.count() == 1
    issue.refresh_from_db()
    assert (issue.event_count, issue.suppressed_count) == (5, 3)


def test_an_unsuppressed_first_event_is_new_once_as_before(client: Client, setup: Setup) -> None:
    _alert_channel(setup)
    services.create_ignore_rule(
        _owner(setup), setup.project, kind=RuleKind.TAG, value="noise=yes", reason="load test"
    )
    send_event(client, setup, environment="staging", tags={"noise": "no"})
    send_event(client, setup, environment="staging", tags={"noise": "yes"})
    send_event(client, setup, environment="staging", tags={"noise": "no"})
    assert list(NotificationDelivery.objects.values_list("topic", flat=True)) == [
        "errors.issue.new"
    ]


def test_assigning_a_project_of_another_org_together_is_refused(
    client: Client, setup: Setup
) -> None:
    other = make_setup()
    [mine] = _issues(client, setup, "PaymentError")
    [theirs] = _issues(client, other, "TheirError")
    with pytest.raises(ValidationError):
        collaboration.assign_issues(_owner(setup), [mine, theirs], None)
    with pytest.raises(ValidationError):
        collaboration.assign_issues(_owner(setup), [], None)
