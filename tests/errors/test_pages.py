"""The issues pages: list with DSN, issue with stack trace (in-app frames first-class), status
changes audited; other organizations' issues are 404, viewers cannot change status."""

from __future__ import annotations

from django.test import Client

from bastion.core.models import AuditEvent, Role
from bastion.errors.models import Issue
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import envelope, event_payload
from tests.errors.test_ingest_protocol import auth_header, post, url
from tests.factories import make_member


def _issue(client: Client, setup: Setup) -> Issue:
    payload = event_payload(
        tags={"region": "eu"},
        breadcrumbs={"values": [{"category": "ui", "message": "clicked pay"}]},
        exception={
            "values": [
                {"type": "KeyError", "value": "'sku'"},
                {
                    "type": "CheckoutError",
                    "value": "cannot pay",
                    "stacktrace": {
                        "frames": [
                            {"module": "django.core", "function": "dispatch", "in_app": False},
                            {"module": "shop.pay", "function": "charge", "in_app": True},
                        ]
                    },
                },
            ]
        },
    )
    _, body = envelope(payload)
    assert post(client, url(setup), body, **auth_header(setup)).status_code == 200
    return Issue.objects.get(project=setup.project)


def test_issue_list_and_detail(client: Client, setup: Setup) -> None:
    issue = _issue(client, setup)
    client.force_login(setup.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/"
    listing = client.get(base)
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "CheckoutError: cannot pay" in html
    assert setup.public_key in html  # the DSN
    detail = client.get(f"{base}issues/{issue.pk}/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert 'data-testid="in-app-frame"' in text and "charge" in text
    assert "caused by" in text and "KeyError" in text
    assert "clicked pay" in text and "region" in text
    response = client.post(f"{base}issues/{issue.pk}/status/", {"status": "resolved"})
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == "resolved"
    assert AuditEvent.objects.filter(action="errors.issue.resolved").exists()
    assert client.get(base + "?status=resolved").content.decode().count("cannot pay") == 1


def test_pages_are_scoped(client: Client, setup: Setup) -> None:
    issue = _issue(client, setup)
    other = make_setup()
    client.force_login(other.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/"
    assert client.get(base).status_code == 404
    assert client.get(f"{base}issues/{issue.pk}/").status_code == 404
    theirs = f"/o/{other.org.slug}/errors/{other.project.slug}/issues/{issue.pk}/"
    assert client.get(theirs).status_code == 404
    viewer = make_member(setup.org, Role.VIEWER)
    client.force_login(viewer)
    page = client.get(f"{base}issues/{issue.pk}/")
    assert page.status_code == 200 and "Resolve" not in page.content.decode()
    response = client.post(f"{base}issues/{issue.pk}/status/", {"status": "resolved"})
    assert response.status_code == 403
    issue.refresh_from_db()
    assert issue.status == "unresolved"
