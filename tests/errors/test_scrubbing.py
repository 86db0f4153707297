"""The scrubber's batched walk gives exactly what checking every string on its own gives."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.errors.scrubbing import FILTERED, MAX_DEPTH, ScrubRules, scrub
from tests.errors.scrub_reference import reference_scrub

# Fragments that trip each check, and some that change length or case when lowered.
# Non-ASCII letters and digits on purpose: \d and str.lower() see them.
FRAGMENTS = [
    "password=hunter2",
    "Authorization",
    "Bearer abcdefgh1234",
    "token: xyz",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "1234 5678 9012 3456",
    "1 2 3 4 5 6 7 8 9 0 1 2 3",
    "\uff14" + "\uff11" * 15,
    "\u0664" + "\u0661" * 15,
    "12-34 ",
    "session",
    "api_key=abc",
    "\u0130stanbul",
    "\u1e9e",
    "\u0391\u03a3",
    "\x00",
    "EMP-4411",
    "safe text",
    "",
    "ok",
]
texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=4).map(" ".join)
keys = st.sampled_from(["password", "user", "SessionId", "ssn_number", "frames", "x"]) | st.text(
    max_size=6
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(keys, children, max_size=5)
        | st.tuples(keys, texts).map(list)
        | st.lists(texts, min_size=1, max_size=6)
    ),
    max_leaves=40,
)
rules_strategy = st.builds(
    ScrubRules.build,
    defaults=st.booleans(),
    fields=st.lists(st.sampled_from(["ssn", "frames", "istanbul"]), max_size=2),
    patterns=st.lists(st.sampled_from([r"EMP-\d+", r"^ok$", r"x*", r"\x00"]), max_size=2),
    safe_fields=st.lists(st.sampled_from(["session_count", "sessionid"]), max_size=1),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, rules_strategy)
def test_batched_walk_matches_checking_each_string(value: Any, rules: ScrubRules) -> None:
    before = copy.deepcopy(value)
    assert scrub(value, rules) == reference_scrub(value, rules)
    assert value == before  # a copy: the input is left as it was


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = {"k": value, "note": "password=x"} if level % 2 else [value, "token abcdefghij"]
    return value


def test_depth_limit_matches_the_reference() -> None:
    for depth in (MAX_DEPTH - 2, MAX_DEPTH, MAX_DEPTH + 3):
        for leaf in (["a", "b"], ["secret stuff", "x"], {"password": "p"}, "plain"):
            for rules in (ScrubRules.build(), ScrubRules.build(patterns=[r"p"])):
                value = _nested(depth, leaf)
                assert scrub(value, rules) == reference_scrub(value, rules)


def test_only_the_sensitive_strings_change() -> None:
    event = {
        "frames": [
            {
                "pre_context": ["def f():", '    get("https://x.test/?token=abc123")'],
                "context_line": "return 1",
            },
            {"vars": {"password": "hunter2", "n": "5", "card": "4111 1111 1111 1111"}},
        ],
        "headers": [["Cookie", "a=b"], ["Accept", "text/html"]],
        "message": "paid with 5500 0000 0000 0004",
    }
    out = scrub(event, ScrubRules.build())
    assert out["frames"][0]["pre_context"] == [
        "def f():",
        f'    get("https://x.test/?token={FILTERED}")',
    ]
    assert out["frames"][0]["context_line"] == "return 1"
    assert out["frames"][1]["vars"] == {"password": FILTERED, "n": "5", "card": FILTERED}
    assert out["headers"] == [["Cookie", FILTERED], ["Accept", "text/html"]]
    assert out["message"] == f"paid with {FILTERED}"
