"""The ingest endpoints as the protocol defines them: auth, encodings, framing, answers."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
import zlib
from typing import Any

import brotli
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bastion.core.access import Principal
from bastion.errors.models import Event, Issue, IssueStatus, ItemCount
from bastion.errors.services import set_issue_status, update_dsn_key
from tests.errors.conftest import Setup
from tests.errors.helpers import envelope, event_payload


def post(client: Client, url: str, body: bytes, **headers: Any) -> Any:
    return client.generic(
        "POST", url, body, content_type="application/x-sentry-envelope", headers=headers
    )


def auth_header(setup: Setup) -> dict[str, str]:
    return {
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=test/1, sentry_key={setup.public_key}"
    }


def url(setup: Setup, kind: str = "envelope") -> str:
    return f"/api/{setup.project.pk}/{kind}/"


def test_preflight_answers_cors(client: Client, setup: Setup) -> None:
    response = client.options(url(setup))
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "x-sentry-auth" in response["Access-Control-Allow-Headers"]
    assert "POST" in response["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("where", ["x-sentry-auth", "authorization", "query", "dsn"])
def test_each_way_of_authenticating_is_accepted(client: Client, setup: Setup, where: str) -> None:
    headers: dict[str, str] = {}
    target = url(setup)
    envelope_headers: dict[str, Any] = {}
    if where == "x-sentry-auth":
        headers = auth_header(setup)
    elif where == "authorization":
        headers = {"Authorization": f"Sentry sentry_key={setup.public_key}, sentry_version=7"}
    elif where == "query":
        target += f"?sentry_version=7&sentry_key={setup.public_key}"
    else:
        envelope_headers["dsn"] = setup.dsn("http://127.0.0.1:9")
    event_id, body = envelope(event_payload(), **envelope_headers)
    response = post(client, target, body, **headers)
    assert response.status_code == 200, response.content
    assert response.json() == {"id": event_id}
    assert response["Access-Control-Allow-Origin"] == "*"
    assert Event.objects.filter(event_id=event_id).exists()


@pytest.mark.parametrize("encoding", ["gzip", "deflate-zlib", "deflate-raw", "br", "identity"])
def test_compressed_bodies(client: Client, setup: Setup, encoding: str) -> None:
    event_id, body = envelope(event_payload())
    if encoding == "gzip":
        data = gzip.compress(body)
    elif encoding == "deflate-zlib":
        data = zlib.compress(body)
    elif encoding == "deflate-raw":
        compressor = zlib.compressobj(wbits=-15)
        data = compressor.compress(body) + compressor.flush()
    elif encoding == "br":
        data = brotli.compress(body)
    else:
        data = body
    name = encoding.split("-")[0]
    response = post(client, url(setup), data, **auth_header(setup), **{"Content-Encoding": name})
    assert response.status_code == 200, response.content
    assert Event.objects.filter(event_id=event_id).count() == 1


def test_newline_framed_items_and_other_item_types(client: Client, setup: Setup) -> None:
    event_id = uuid.uuid4().hex
    lines = [
        {"event_id": event_id},
        {"type": "event"},
        event_payload(message="hello"),
        {"type": "session"},
        {"sid": "abc", "status": "ok"},
        {"type": "client_report"},
        {"timestamp": 1, "discarded_events": []},
        {"type": "something_new"},
        {"x": 1},
        {"type": "transaction"},
        {"spans": []},
    ]
    body = b"\n".join(json.dumps(line).encode() for line in lines)
    response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 200, response.content
    assert Event.objects.filter(event_id=event_id).exists()
    counts = dict(ItemCount.objects.values_list("item_type", "count"))
    assert counts == {"session": 1, "client_report": 1, "transaction": 1}


# Through the ingest JSON codec's two paths: orjson (text of any kind) and the standard library
# (numbers of 19 digits and more, which orjson would turn into floats past 64 bits).
EXTRAS = {
    "text": (
        b'{"plain":"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",'
        b'"escaped":"\\u00e9 \\u20ac \\ud83d\\ude00","seps":"\\u2028\\u2029\\u001f",'
        b'"\xe2\x82\xac key":[0.1,1.5e-7,-2.5,123456789012345678],'
        b'"nested":{"a":[{"b":[[[{"c":null}]]]}]}}'
    ),
    "numbers": (
        b'{"edges":[9223372036854775807,-9223372036854775808,18446744073709551615],'
        b'"past 64 bits":[18446744073709551616,-9223372036854775809,1180591620717411303424],'
        b'"digits":"1234567890123456789012","\xc3\xa9":"\xf0\x9f\x98\x80"}'
    ),
}


@pytest.mark.parametrize("kind", ["envelope", "store"])
@pytest.mark.parametrize("extra", list(EXTRAS))
def test_event_values_are_stored_as_the_client_sent_them(
    client: Client, setup: Setup, kind: str, extra: str
) -> None:
    event_id = uuid.uuid4().hex
    payload = (
        b'{"event_id":"' + event_id.encode() + b'","message":"caf\xc3\xa9 \xf0\x9f\x92\xa5",'
        b'"extra":' + EXTRAS[extra] + b"}"
    )
    body = payload
    if kind == "envelope":
        body = b'{"event_id":"%s"}\n{"type":"event"}\n%s' % (event_id.encode(), payload)
    response = post(client, url(setup, kind), body, **auth_header(setup))
    assert response.status_code == 200, response.content
    data = Event.objects.get(event_id=event_id).data
    sent = json.loads(EXTRAS[extra])
    # As text, so that an int that became a float (2**70 == float(2**70)) is told apart.
    assert json.dumps(data["extra"], sort_keys=True) == json.dumps(sent, sort_keys=True)
    assert data["message"] == "café 💥"
    assert Issue.objects.get().title == "café 💥"


@pytest.mark.parametrize("big", [False, True], ids=["orjson", "json"])
def test_nan_and_infinities_are_stored_as_null(client: Client, setup: Setup, big: bool) -> None:
    # json.dumps wrote NaN, which neither SQLite's JSON_VALID nor PostgreSQL's jsonb accepts:
    # the event was refused by the database. ``big`` takes the standard library's path.
    extra = b'{"ratio":NaN,"limits":[Infinity,-Infinity,1e400]%s}' % (
        b',"big":18446744073709551616' if big else b""
    )
    event_id = uuid.uuid4().hex
    payload = json.dumps(event_payload()).encode()[:-1] + b',"extra":' + extra + b"}"
    body = b'{"event_id":"%s"}\n{"type":"event"}\n%s' % (event_id.encode(), payload)
    response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 200, response.content
    stored = Event.objects.get(event_id=event_id).data["extra"]
    assert stored == {
        "ratio": None,
        "limits": [None, None, None],
        **({"big": 2**64} if big else {}),
    }


UNSTORABLE = {
    # NUL, refused by PostgreSQL in text and jsonb, as an escape and in a key.
    "nul": (b'"a\\u0000b"', b'{"k\\u0000":"v"}', "a\ufffdb", {"k\ufffd": "v"}),
    # Lone surrogates (escaped, and as raw bytes json.loads reads with surrogatepass), refused
    # by both databases; a valid pair stays the character it encodes.
    "surrogates": (
        b'"x\\ud800y \\ud83d\\ude00"',
        b'{"raw":"\xed\xa0\x80"}',
        "x\ufffdy \U0001f600",
        {"raw": "\ufffd"},
    ),
}


@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(
    client: Client, setup: Setup, case: str
) -> None:
    message, extra, stored_message, stored_extra = UNSTORABLE[case]
    event_id = uuid.uuid4().hex
    payload = b'{"message":%s,"extra":%s,"tags":{"t":%s},"user":{"id":%s}}' % (
        message,
        extra,
        message,
        message,
    )
    body = b'{"event_id":"%s"}\n{"type":"event"}\n%s' % (event_id.encode(), payload)
    response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 200, response.content
    data = Event.objects.get(event_id=event_id).data
    assert data["message"] == stored_message
    assert data["extra"] == stored_extra
    assert data["tags"] == {"t": stored_message}
    assert Issue.objects.get().title == stored_message


def test_an_event_nested_too_deeply_is_a_400(client: Client, setup: Setup) -> None:
    deep = b'{"message":"deep","extra":{"a":' + b"[" * 3000 + b"]" * 3000 + b"}}"
    event_id = uuid.uuid4().hex
    body = b'{"event_id":"%s"}\n{"type":"event"}\n%s' % (event_id.encode(), deep)
    response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 400, response.content
    assert b"nested too deeply" in response.content
    assert not Event.objects.exists()


def test_duplicate_event_id_is_stored_once(client: Client, setup: Setup) -> None:
    event_id, body = envelope(event_payload())
    for _ in range(2):
        assert post(client, url(setup), body, **auth_header(setup)).status_code == 200
    assert Event.objects.filter(event_id=event_id).count() == 1
    assert Issue.objects.get().event_count == 1


def test_store_endpoint_json_and_legacy_base64(client: Client, setup: Setup) -> None:
    event_id = uuid.uuid4().hex
    payload = json.dumps(event_payload(event_id=event_id)).encode()
    response = post(client, url(setup, "store"), payload, **auth_header(setup))
    assert response.status_code == 200, response.content
    assert response.json() == {"id": event_id}
    second = uuid.uuid4().hex
    legacy = base64.b64encode(zlib.compress(json.dumps(event_payload(event_id=second)).encode()))
    response = post(client, url(setup, "store"), legacy, **auth_header(setup))
    assert response.status_code == 200, response.content
    assert Event.objects.filter(event_id__in=[event_id, second]).count() == 2
    assert Issue.objects.get().event_count == 2


def test_rate_limited_key_gets_429_with_sentry_headers(client: Client, setup: Setup) -> None:
    update_dsn_key(Principal.of_user(setup.owner), setup.key, rate_limit_per_minute=2)
    statuses = []
    for _ in range(3):
        _, body = envelope(event_payload())
        response = post(client, url(setup), body, **auth_header(setup))
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    assert int(response["Retry-After"]) >= 1
    assert response["X-Sentry-Rate-Limits"].endswith(":error;default;attachment:key:key_quota")
    assert Event.objects.count() == 2


def test_resolved_issue_that_recurs_is_reopened(client: Client, setup: Setup) -> None:
    _, body = envelope(event_payload())
    post(client, url(setup), body, **auth_header(setup))
    issue = set_issue_status(Principal.of_user(setup.owner), Issue.objects.get(), "resolved")
    assert issue.status == IssueStatus.RESOLVED
    _, body = envelope(event_payload())
    post(client, url(setup), body, **auth_header(setup))
    issue.refresh_from_db()
    assert issue.status == IssueStatus.UNRESOLVED and issue.event_count == 2


def test_ingest_of_a_known_issue_is_a_handful_of_queries(client: Client, setup: Setup) -> None:
    _, body = envelope(event_payload(user={"id": "1"}))
    post(client, url(setup), body, **auth_header(setup))
    _, body = envelope(event_payload(user={"id": "1"}))
    with CaptureQueriesContext(connection) as queries:
        response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 200
    # duplicate check, issue lock, affected-user check, event insert, issue update, tag-value
    # upsert (the key is cached), plus transaction/savepoint statements.
    statements = [q["sql"] for q in queries.captured_queries]
    data_statements = [
        s
        for s in statements
        if not s.upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))
    ]
    assert len(data_statements) == 6, statements
    assert 'INSERT INTO "errors_issuetagvalue"' in data_statements[-1]
