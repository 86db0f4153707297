"""Bad input gets the right 4xx quickly and writes nothing."""

from __future__ import annotations

import gzip
import json
import uuid

import brotli
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.core.access import Principal
from bastion.errors.ingest import MAX_ENVELOPE_BYTES
from bastion.errors.models import Attachment, Event, Issue, IssueTagValue, ItemCount
from bastion.errors.services import update_dsn_key
from tests.errors.conftest import Setup
from tests.errors.helpers import envelope, event_payload
from tests.errors.test_ingest_protocol import auth_header, post, url


def assert_nothing_written() -> None:
    assert Event.objects.count() == 0
    assert Issue.objects.count() == 0
    assert Attachment.objects.count() == 0
    assert ItemCount.objects.count() == 0
    assert IssueTagValue.objects.count() == 0


def _event_line() -> bytes:
    return json.dumps(event_payload()).encode()


BAD_ENVELOPES: dict[str, bytes] = {
    "empty body": b"",
    "header not json": b"{not json\n",
    "header not an object": b"[1,2]\n",
    "item header not json": b'{"event_id":"' + uuid.uuid4().hex.encode() + b'"}\n{"type":\n{}\n',
    "item without type": b'{"event_id":"' + uuid.uuid4().hex.encode() + b'"}\n{"length":2}\n{}\n',
    "truncated item": b'{"event_id":"'
    + uuid.uuid4().hex.encode()
    + b'"}\n{"type":"event","length":500}\n{"level":"error"}\n',
    "payload longer than length": b'{"event_id":"'
    + uuid.uuid4().hex.encode()
    + b'"}\n{"type":"event","length":3}\n{"level":"error"}\n',
    "negative length": b'{"event_id":"'
    + uuid.uuid4().hex.encode()
    + b'"}\n{"type":"event","length":-1}\n{}\n',
    "event not json": b'{"event_id":"'
    + uuid.uuid4().hex.encode()
    + b'"}\n{"type":"event"}\n{oops\n',
    "event not an object": b'{"event_id":"'
    + uuid.uuid4().hex.encode()
    + b'"}\n{"type":"event"}\n[1]\n',
    "event without event_id": b'{}\n{"type":"event"}\n' + _event_line() + b"\n",
    "bad event_id": b'{"event_id":"nope"}\n{"type":"event"}\n' + _event_line() + b"\n",
    "garbage bytes": bytes(range(256)) * 4,
    # A good event followed by a broken item: the whole envelope is refused, the event too.
    "good event then truncated attachment": envelope(event_payload())[1]
    + b'{"type":"attachment","length":10000}\nx\n',
    "good event then item header garbage": envelope(event_payload())[1] + b"\x00\xff{{\n{}\n",
}


@pytest.mark.parametrize("name", sorted(BAD_ENVELOPES))
def test_malformed_envelopes_are_400(client: Client, setup: Setup, name: str) -> None:
    response = post(client, url(setup), BAD_ENVELOPES[name], **auth_header(setup))
    assert response.status_code == 400, (name, response.content)
    assert response["X-Sentry-Error"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "detail" in response.json()
    assert_nothing_written()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_garbled_compression_is_400(client: Client, setup: Setup, encoding: str) -> None:
    _, body = envelope(event_payload())
    compressed = gzip.compress(body) if encoding != "br" else brotli.compress(body)
    garbled = compressed[:10] + bytes(b ^ 0x5A for b in compressed[10:30]) + compressed[30:]
    for data in (garbled, compressed[: len(compressed) // 2], b"plain text, not compressed"):
        response = post(
            client, url(setup), data, **auth_header(setup), **{"Content-Encoding": encoding}
        )
        assert response.status_code == 400, (encoding, response.content)
    assert_nothing_written()


def test_unsupported_encoding_is_400(client: Client, setup: Setup) -> None:
    _, body = envelope(event_payload())
    response = post(client, url(setup), body, **auth_header(setup), **{"Content-Encoding": "lzma"})
    assert response.status_code == 400
    assert_nothing_written()


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_decompression_bombs_are_413(client: Client, setup: Setup, encoding: str) -> None:
    zeros = b"\0" * (MAX_ENVELOPE_BYTES + 1024 * 1024)  # compresses to a few dozen KiB
    head = (
        b'{"event_id":"' + uuid.uuid4().hex.encode() + b'"}\n{"type":"attachment","filename":"a"}\n'
    )
    if encoding == "gzip":
        bomb = gzip.compress(head + zeros, compresslevel=1)
    else:
        bomb = brotli.compress(head + zeros, quality=1)
    del zeros
    assert len(bomb) < 1024 * 1024
    response = post(
        client, url(setup), bomb, **auth_header(setup), **{"Content-Encoding": encoding}
    )
    assert response.status_code == 413
    assert_nothing_written()


def test_hundred_megabyte_body_is_413(client: Client, setup: Setup) -> None:
    body = b"x" * (100 * 1024 * 1024)
    response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 413
    assert_nothing_written()


def test_event_item_over_one_mebibyte_is_413(client: Client, setup: Setup) -> None:
    _, body = envelope(event_payload(extra={"blob": "y" * (1024 * 1024)}))
    response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 413
    assert_nothing_written()


def test_missing_and_conflicting_auth_are_401(client: Client, setup: Setup) -> None:
    _, body = envelope(event_payload())
    assert post(client, url(setup), body).status_code == 401
    response = post(client, url(setup) + "?sentry_key=other", body, **auth_header(setup))
    assert response.status_code == 401
    assert_nothing_written()


def test_unknown_key_wrong_project_and_disabled_key_are_403(client: Client, setup: Setup) -> None:
    _, body = envelope(event_payload())
    unknown = {"X-Sentry-Auth": "Sentry sentry_key=0123456789abcdef0123456789abcdef"}
    assert post(client, url(setup), body, **unknown).status_code == 403
    wrong_project = f"/api/{setup.project.pk + 1000}/envelope/"
    assert post(client, wrong_project, body, **auth_header(setup)).status_code == 403
    assert (
        post(client, "/api/not-a-number/envelope/", body, **auth_header(setup)).status_code == 403
    )
    update_dsn_key(Principal.of_user(setup.owner), setup.key, enabled=False)
    response = post(client, url(setup), body, **auth_header(setup))
    assert response.status_code == 403
    assert response.json() == {"detail": "This key is disabled."}
    store = post(
        client, url(setup, "store"), json.dumps(event_payload()).encode(), **auth_header(setup)
    )
    assert store.status_code == 403
    assert_nothing_written()


def test_get_is_405(client: Client, setup: Setup) -> None:
    assert client.get(url(setup)).status_code == 405


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=3000), encoding=st.sampled_from(["", "gzip", "deflate", "br"]))
def test_arbitrary_bodies_through_the_endpoint_get_a_4xx_never_a_5xx(
    client: Client, setup: Setup, body: bytes, encoding: str
) -> None:
    headers = {**auth_header(setup), **({"Content-Encoding": encoding} if encoding else {})}
    response = post(client, url(setup), body, **headers)
    assert response.status_code in {200, 400, 413}, (body[:80], response.content)
    if response.status_code != 200:
        assert response.json()["detail"]
