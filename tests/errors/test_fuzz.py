"""Property tests of the pure parts of ingest: they answer or refuse, never crash."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import brotli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.errors.auth import MissingAuth, find_public_key, parse_auth_header
from bastion.errors.encoding import BadEncoding, BodyTooLarge, decode_body
from bastion.errors.envelope import EnvelopeError, parse_envelope, serialize_envelope
from bastion.errors.grouping import grouping_hash
from bastion.errors.normalize import InvalidEvent, normalize_event
from bastion.errors.scrubbing import FILTERED, ScrubRules, scrub

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
headers = st.dictionaries(st.text(max_size=10), json_values, max_size=4)


@FUZZ
@given(st.binary(max_size=2000))
def test_parser_accepts_or_refuses_arbitrary_bytes(data: bytes) -> None:
    try:
        envelope = parse_envelope(data)
    except EnvelopeError:
        return
    assert isinstance(envelope.headers, dict)
    for item in envelope.items:
        assert isinstance(item.type, str)
        assert len(item.payload) <= len(data)


@FUZZ
@given(
    headers,
    st.lists(
        st.tuples(
            st.sampled_from(["event", "attachment", "session", "x-unknown"]),
            headers,
            st.binary(max_size=300),
        ),
        max_size=5,
    ),
)
def test_length_framed_envelopes_round_trip(
    envelope_headers: dict[str, Any], items: list[tuple[str, dict[str, Any], bytes]]
) -> None:
    framed = [({**extra, "type": kind}, payload) for kind, extra, payload in items]
    parsed = parse_envelope(serialize_envelope(envelope_headers, framed))
    assert parsed.headers == json.loads(json.dumps(envelope_headers))
    assert [(i.type, i.payload) for i in parsed.items] == [(h["type"], p) for h, p in framed]


@FUZZ
@given(st.binary(max_size=1000), st.integers(min_value=0, max_value=200))
def test_mutated_envelopes_never_crash(suffix: bytes, cut: int) -> None:
    body = serialize_envelope(
        {"event_id": uuid.uuid4().hex}, [({"type": "event"}, b'{"message":"m"}')]
    )
    for data in (body[:cut] + suffix, body + suffix, suffix + body):
        try:
            parse_envelope(data)
        except EnvelopeError:
            pass


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["gzip", "deflate", "br", "", "x"]))
def test_decoding_arbitrary_bytes_is_bounded(data: bytes, encoding: str) -> None:
    try:
        out = decode_body(data, encoding, 10_000)
    except (BadEncoding, BodyTooLarge):
        return
    assert len(out) <= 10_000


@FUZZ
@given(st.binary(max_size=5000))
def test_every_encoding_round_trips(data: bytes) -> None:
    raw_deflate = zlib.compressobj(wbits=-15)
    encoded = {
        "gzip": gzip.compress(data),
        "br": brotli.compress(data),
        "deflate": zlib.compress(data),
    }
    for name, body in encoded.items():
        assert decode_body(body, name, len(data)) == data
    assert decode_body(raw_deflate.compress(data) + raw_deflate.flush(), "deflate", 10**6) == data


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "message",
                "exception",
                "logentry",
                "tags",
                "user",
                "level",
                "timestamp",
                "fingerprint",
                "breadcrumbs",
                "request",
                "release",
            ]
        ),
        json_values,
    )
)
def test_normalize_scrub_and_group_any_event_shape(payload: dict[str, Any]) -> None:
    now = datetime.now(tz=UTC)
    try:
        event = normalize_event(payload, uuid.uuid4(), now, "127.0.0.1")
    except InvalidEvent:
        return
    cleaned = scrub(event, ScrubRules.build())
    assert len(grouping_hash(cleaned)) == 64
    json.dumps(cleaned)


@FUZZ
@given(st.text(max_size=200), st.text(max_size=40) | st.none(), st.text(max_size=40) | st.none())
def test_auth_parsing_never_crashes(header: str, query: str | None, dsn: str | None) -> None:
    parse_auth_header(header)
    try:
        find_public_key(header, None, query, dsn)
    except MissingAuth:
        pass


def test_scrubbing_rules() -> None:
    rules = ScrubRules.build(fields=["ssn"], patterns=[r"EMP-\d+"], safe_fields=["session_count"])
    data = {
        "headers": [["Authorization", "Bearer x"], ["Accept", "text/html"]],
        "ssn_number": "123-45-6789",
        "session_count": 3,
        "note": "employee EMP-4411 paid with 5500 0000 0000 0004 and 1234 5678 9012 3456",
        "url": "https://x.test/?api_key=abc&page=1",
    }
    out = scrub(data, rules)
    assert out["headers"] == [["Authorization", FILTERED], ["Accept", "text/html"]]
    assert out["ssn_number"] == FILTERED
    assert out["session_count"] == 3
    assert "EMP-4411" not in out["note"] and "5500 0000 0000 0004" not in out["note"]
    assert "1234 5678 9012 3456" in out["note"]  # not Luhn-valid: not a card number
    assert out["url"] == f"https://x.test/?api_key={FILTERED}&page=1"
    assert scrub(data, ScrubRules.build(defaults=False))["ssn_number"] == "123-45-6789"
