"""Project fingerprint rules: parsed with line-numbered errors, tried in order on real SDK events
(the first rule whose matchers all hold sets the fingerprint, variables resolved, ``{{ default }}``
refining the default grouping), audited, scoped, and editable from the page and the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sentry_sdk
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from bastion.core import services as core_services
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from bastion.errors import fingerprinting, services
from bastion.errors.grouping import GROUPING_VERSION
from bastion.errors.models import Event, Issue
from tests.errors.conftest import Setup, make_setup
from tests.errors.helpers import send_event
from tests.errors.sdk_helpers import sentry_client
from tests.factories import make_member


class UpstreamTimeout(Exception):
    pass


class LedgerError(Exception):
    pass


def _timeout(host: str) -> None:
    raise UpstreamTimeout(f"upstream {host} timed out after 30s")


def _ledger(account: int) -> None:
    raise LedgerError(f"account {account} is locked")


def _set(setup: Setup, text: str) -> str:
    return services.set_fingerprint_rules(Principal.of_user(setup.owner), setup.project, text)


RULES = """
# timeouts from any upstream are one issue, whatever the stack
error.type:UpstreamTimeout message:"*timed out*" -> upstream-timeout
error.type:LedgerError tags.region:eu -> ledger, {{ tags.region }}, {{ default }}
error.type:LedgerError !tags.region:eu -> ledger-elsewhere, {{ function }}
"""


@pytest.mark.slow
def test_rules_group_real_sdk_events_in_order(live_server: Any, live_setup: Setup) -> None:
    _set(live_setup, RULES)
    with sentry_client(live_setup.dsn(live_server.url), release="shop@2"):
        ids = []
        for host in ("pay.internal", "stock.internal"):  # different values, one issue
            try:
                _timeout(host)
            except UpstreamTimeout:
                ids.append(sentry_sdk.capture_exception())
        for region in ("eu", "us", "eu"):
            with sentry_sdk.new_scope() as scope:
                scope.set_tag("region", region)
                try:
                    _ledger(7)
                except LedgerError:
                    ids.append(sentry_sdk.capture_exception())
    events = [Event.objects.get(event_id=event_id) for event_id in ids]
    timeouts, eu_one, us, eu_two = events[0:2], events[2], events[3], events[4]
    assert timeouts[0].issue_id == timeouts[1].issue_id
    assert timeouts[0].data["fingerprint"] == ["upstream-timeout"]
    assert timeouts[0].data["fingerprint_rule"].startswith("error.type:UpstreamTimeout")
    assert eu_one.issue_id == eu_two.issue_id != us.issue_id
    assert eu_one.data["fingerprint"] == ["ledger", "eu", "{{ default }}"]
    assert us.data["fingerprint"] == ["ledger-elsewhere", "_ledger"]
    assert Issue.objects.filter(project=live_setup.project).count() == 3
    assert {e.grouping_version for e in events} == {GROUPING_VERSION}


def test_without_a_matching_rule_the_default_grouping_holds(client: Client, setup: Setup) -> None:
    exception = {"values": [{"type": "KeyError", "value": "'sku'"}]}
    before = send_event(client, setup, exception=exception)
    _set(setup, "error.type:ValueError -> values")
    after = send_event(client, setup, exception=exception)
    first, second = (Event.objects.get(event_id=i) for i in (before, after))
    assert first.issue_id == second.issue_id
    assert "fingerprint_rule" not in second.data


def test_a_rule_overrides_the_sdk_fingerprint(client: Client, setup: Setup) -> None:
    _set(setup, 'message:"disk *" -> disk')
    one = send_event(client, setup, exception=None, message="disk full", fingerprint=["a"])
    two = send_event(client, setup, exception=None, message="disk slow", fingerprint=["b"])
    assert Event.objects.get(event_id=one).issue_id == Event.objects.get(event_id=two).issue_id


@pytest.mark.parametrize(
    ("text", "mistake"),
    [
        ("error.type:KeyError", "line 1: a rule is matchers -> fingerprint"),
        ("\ncolour:red -> x", "line 2: unknown matcher 'colour'"),
        ("-> x", "line 1: a rule needs at least one matcher"),
        ("type:KeyError ->", "line 1: empty fingerprint part"),
        ("type:KeyError -> {{ nonsense }}", "line 1: unknown variable"),
        ("type: -> x", "line 1: matcher 'type' has no value"),
        ("type:A -> x\n" * 201, "more than 200 rules"),
    ],
)
def test_bad_rules_are_refused_with_the_line_and_change_nothing(
    setup: Setup, text: str, mistake: str
) -> None:
    _set(setup, "type:KeyError -> keys")
    audited = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        _set(setup, text)
    assert mistake in " ".join(refused.value.messages)
    setup.project.error_settings.refresh_from_db()
    assert setup.project.error_settings.fingerprint_rules == "type:KeyError -> keys"
    assert AuditEvent.objects.count() == audited


def test_parsing_quotes_negation_aliases_and_globs() -> None:
    rules = fingerprinting.parse(
        'stack.module:"shop.*" !tags.tier:"free plan" -> "a, b", {{ error.type }}'
    )
    (rule,) = rules
    assert [(m.key, m.pattern, m.negated) for m in rule.matchers] == [
        ("module", "shop.*", False),
        ("tags.tier", "free plan", True),
    ]
    assert rule.fingerprint == ("a, b", "{{ error.type }}")
    data: dict[str, Any] = {
        "exception": [
            {
                "type": "Boom",
                "stacktrace": {"frames": [{"module": "shop.cart", "function": "add"}]},
            }
        ],
        "tags": {"tier": "paid"},
    }
    assert fingerprinting.apply(rules, data)["fingerprint"] == ["a, b", "Boom"]
    assert fingerprinting.apply(rules, {**data, "tags": {"tier": "Free Plan"}}) is not None
    assert "fingerprint_rule" not in fingerprinting.apply(
        rules, {**data, "tags": {"tier": "Free Plan"}}
    )


def test_changes_are_audited_and_need_an_admin(setup: Setup) -> None:
    _set(setup, "type:KeyError -> keys")
    row = AuditEvent.objects.filter(action="errors.fingerprint_rules.update").latest("pk")
    assert row.changes["rules"]["after"] == "type:KeyError -> keys"
    member = make_member(setup.org, Role.MEMBER)
    with pytest.raises(PermissionDenied):
        services.set_fingerprint_rules(Principal.of_user(member), setup.project, "type:A -> a")


def test_api_reads_and_replaces_rules_scoped_to_the_organization(
    client: Client, setup: Setup
) -> None:
    token = core_services.create_api_token(
        Principal.of_user(setup.owner), setup.org, name="t", role=Role.ADMIN
    ).plaintext
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/v1/organizations/{setup.org.slug}/projects/{setup.project.slug}"
    response = client.put(
        f"{path}/fingerprint-rules",
        json.dumps({"rules": "type:KeyError -> keys, {{ default }}"}),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200, response.content
    assert response.json()["parsed"][0]["fingerprint"] == ["keys", "{{ default }}"]
    bad = client.put(
        f"{path}/fingerprint-rules",
        json.dumps({"rules": "nonsense"}),
        content_type="application/json",
        headers=headers,
    )
    assert bad.status_code == 400
    assert client.get(f"{path}/fingerprint-rules", headers=headers).json()["rules"] == (
        "type:KeyError -> keys, {{ default }}"
    )
    other = make_setup()
    elsewhere = f"/api/v1/organizations/{other.org.slug}/projects/{other.project.slug}"
    assert client.get(f"{elsewhere}/fingerprint-rules", headers=headers).status_code == 404


def test_page_shows_parsed_rules_and_keeps_a_refused_text(client: Client, setup: Setup) -> None:
    client.force_login(setup.owner)
    base = f"/o/{setup.org.slug}/errors/{setup.project.slug}/fingerprint-rules/"
    saved = client.post(base + "save/", {"rules": "type:KeyError -> keys"})
    assert saved.status_code == 302
    shown = client.get(base)
    assert shown.status_code == 200 and b'data-testid="parsed-rule"' in shown.content
    refused = client.post(base + "save/", {"rules": "type:KeyError -> keys\nbad line"})
    assert refused.status_code == 400
    assert b"line 2: a rule is matchers -&gt; fingerprint" in refused.content
    assert b"bad line" in refused.content
