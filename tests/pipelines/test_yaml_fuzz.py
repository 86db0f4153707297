"""Whatever the file holds, the parser answers with a pipeline or PipelineInvalid, never a crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.pipelines.yaml import PipelineInvalid, parse_pipeline
from bastion.pipelines.yaml.load import AnyVariable

KEYS = st.sampled_from([
    "command", "commands", "key", "label", "depends_on", "wait", "block", "input", "trigger",
    "group", "steps", "matrix", "setup", "adjustments", "with", "parallelism", "retry",
    "automatic", "manual", "exit_status", "limit", "soft_fail", "fields", "text", "select",
    "options", "value", "env", "agents", "if", "branches", "skip", "concurrency",
    "concurrency_group", "priority", "timeout_in_minutes", "allow_failure", "step", "type",
])  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 60), st.sampled_from(["*", "a", "b", "$X", "~"]),
    st.text(max_size=8),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def _parse(text: str) -> None:
    try:
        parse_pipeline(text, AnyVariable())
    except PipelineInvalid as exc:
        assert exc.problems


@settings(max_examples=150, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(KEYS, VALUES, max_size=6) | SCALARS, min_size=1, max_size=5))
def test_structured_steps_never_crash(steps: list[object]) -> None:
    _parse(json.dumps({"steps": steps}))


@settings(max_examples=100, derandomize=True)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _parse(text)
