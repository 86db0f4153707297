"""Pure functions of the engine: retire.js matching, reflection contexts, fingerprints."""

from __future__ import annotations

import pytest

from bastion.scanning.engine import retire
from bastion.scanning.engine.checks.reflected_input import exploitable, reflection_context
from bastion.scanning.engine.findings import Finding
from bastion.scanning.engine.html import parse_html


@pytest.mark.parametrize(
    ("a", "b", "at_or_above"),
    [
        ("1.8.3", "1.9.0", False),
        ("1.9.0", "1.9.0", True),
        ("1.10.0", "1.9.0", True),
        ("3.0.0-rc1", "3.0.0", False),  # a pre-release sorts below its release
        ("3.0.0", "3.0.0-rc1", True),
        ("1.9", "1.9.0", True),
    ],
)
def test_retire_version_comparison(a: str, b: str, at_or_above: bool) -> None:
    assert retire.is_at_or_above(a, b) is at_or_above


def test_retire_matches_urls_and_content_from_the_vendored_repository() -> None:
    by_url = {
        (m.library, m.version) for m in retire.scan_url("https://cdn.test/jquery-1.8.3.min.js")
    }
    assert by_url == {("jquery", "1.8.3")}
    assert retire.scan_url("https://cdn.test/jquery-3.7.1.min.js") == []
    by_content = retire.scan_content("/*! jQuery v1.8.3 jquery.com | jquery.org/license */")
    assert [(m.library, m.version) for m in by_content] == [("jquery", "1.8.3")]
    assert "CVE-2020-11022" in by_content[0].cves
    assert len(retire.load_repository()) > 50


@pytest.mark.parametrize(
    ("html", "context", "after", "vulnerable"),
    [
        ("<p>MARK", "html", "'\"<>", True),
        ("<p>MARK", "html", "'\"&lt;&gt;", False),
        ('<input value="MARK', "attribute-double-quoted", "'\"&lt;", True),
        ('<input value="MARK', "attribute-double-quoted", "'&quot;&lt;", False),
        ("<input value='MARK", "attribute-single-quoted", "'&quot;", True),
        ("<input value=MARK", "attribute-unquoted", "&#39;&quot;&gt;", False),
        ("<script>var a = 'MARK", "script", "'\"", True),
        ("<!-- MARK", "comment", "&gt;", False),
    ],
)
def test_reflection_context(html: str, context: str, after: str, vulnerable: bool) -> None:
    index = html.index("MARK")
    assert reflection_context(html, index) == context
    assert exploitable(context, after) is vulnerable


def test_fingerprint_is_versioned_and_ignores_query_values() -> None:
    a = Finding("reflected-xss", "https://App.test:443/search?q=1&page=2", parameter="q")
    b = Finding("reflected-xss", "https://app.test/search?page=9&q=zzz", parameter="q")
    c = Finding("reflected-xss", "https://app.test/search?q=1", parameter="q")
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.fingerprint.startswith("finding:v1:")
    with pytest.raises(KeyError):
        Finding("no-such-type", "https://app.test/")


@pytest.mark.nodb
def test_garbage_html_keeps_what_was_parsed_before_the_parser_gave_up() -> None:
    # Python's HTMLParser raises AssertionError on "<![!" followed by garbage (seen from the
    # misbehaving lab's random bytes); a check must not crash on it.
    doc = parse_html('<a href="/before">x</a><![!\x0f\x8c garbage', "http://127.0.0.1/")
    assert doc.links == ["http://127.0.0.1/before"]
