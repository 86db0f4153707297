"""The pipeline.yml parser on a corpus of real-world style files and on broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.pipelines.yaml import (
    BlockStep,
    CommandStep,
    GroupStep,
    PipelineInvalid,
    SelectField,
    TextField,
    TriggerStep,
    WaitStep,
    compile_condition,
    parse_pipeline,
)
from bastion.pipelines.yaml.load import interpolate_text
from bastion.pipelines.yaml.steps import Dependency

CORPUS = Path(__file__).parent / "corpus"
ENV = {"BUILDKITE_COMMIT": "0123456789abcdef", "BUILDKITE_BRANCH": "main"}


def load(name: str) -> object:
    return parse_pipeline((CORPUS / name).read_text(), ENV)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(text, env or {})
    return caught.value.messages()


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.yml")))
def test_every_corpus_file_parses_and_every_need_exists(name: str) -> None:
    pipeline = parse_pipeline((CORPUS / name).read_text(), ENV)
    keys = {step.key for step in pipeline.steps}
    assert len(keys) == len(pipeline.steps)
    for step in pipeline.steps:
        assert {need.key for need in step.needs} <= keys, step.key


def test_rails_app() -> None:
    pipeline = parse_pipeline((CORPUS / "rails-app.yml").read_text(), ENV)
    setup, specs, lint, wait, approve, deploy = pipeline.steps
    assert isinstance(setup, CommandStep)
    assert setup.command == "bundle config set --local path vendor/bundle\nbundle install --jobs 4"
    assert setup.timeout_in_minutes == 15 and setup.agents == {"queue": "default"}
    assert [(r.exit_statuses, r.limit) for r in setup.retry_automatic] == [((-1,), 2), ((255,), 2)]
    assert isinstance(specs, CommandStep) and specs.parallelism == 4
    assert specs.artifact_paths == ("log/*.log", "coverage/**/*")
    assert specs.env == {"CI_NODE_TOTAL": "$BUILDKITE_PARALLEL_JOB_COUNT"}
    assert specs.needs == (Dependency("setup"),)
    assert isinstance(lint, CommandStep) and lint.soft_fail.matches(1)
    assert not lint.soft_fail.matches(2)
    assert isinstance(wait, WaitStep)
    assert {n.key for n in wait.needs} == {"setup", "specs", "lint"}
    assert isinstance(approve, BlockStep) and approve.blocking
    assert approve.prompt == "Ship 0123456789abcdef?" and approve.branches == ("main",)
    region, ticket = approve.fields
    assert isinstance(region, SelectField) and region.default == ("eu",)
    assert [o.value for o in region.options] == ["eu", "us"]
    assert isinstance(ticket, TextField) and ticket.format == "CHG-[0-9]+" and ticket.required
    assert isinstance(deploy, CommandStep)
    assert deploy.needs == (Dependency("approve"),)
    assert deploy.command == 'scripts/deploy.sh "$(buildkite-agent meta-data get region)"'
    assert deploy.agents == {"queue": "deploy"}
    assert (deploy.concurrency, deploy.concurrency_group) == (1, "app/deploy-production")
    assert not deploy.retry_manual.allowed and "new build" in deploy.retry_manual.reason
    assert pipeline.env["RAILS_ENV"] == "test"


def test_monorepo_matrix_group_and_trigger() -> None:
    pipeline = parse_pipeline((CORPUS / "monorepo-matrix.yml").read_text(), ENV)
    group, matrix_step, types, image, trigger, report = pipeline.steps
    assert isinstance(group, GroupStep) and group.key == "tests"
    assert set(group.children) == {matrix_step.key, "types"}
    assert {n.key for n in group.needs} == {matrix_step.key, "types"}
    assert matrix_step.group == types.group == "tests"
    assert isinstance(matrix_step, CommandStep) and matrix_step.matrix is not None
    combos = matrix_step.matrix.combinations()
    assert len(combos) == 5  # 3 services x 2 versions, one skipped
    assert ({"service": "worker", "node": "18"}, None) not in combos
    web20 = next(soft for combo, soft in combos if combo == {"service": "web", "node": "20"})
    assert web20 is not None and web20.any
    assert matrix_step.agents == {"node": "{{matrix.node}}"}
    assert isinstance(image, CommandStep) and image.needs == (Dependency("tests"),)
    assert "app:0123456 ." in image.command and image.condition is not None
    context = {"build.branch": "main", "pipeline.default_branch": "main", "build.tag": None}
    assert image.runs_for(context)
    assert not image.runs_for({**context, "build.branch": "feature"})
    assert image.runs_for({**context, "build.branch": "feature", "build.tag": "v2.0.1"})
    assert isinstance(trigger, TriggerStep) and trigger.pipeline == "app-deploy"
    assert not trigger.is_async and trigger.build.branch == "main"
    assert trigger.build.message == "Deploy of a build"
    assert trigger.build.env == {"ENVIRONMENT": "staging"}
    assert trigger.build.meta_data == {"image": "app:0123456"}
    assert report.needs == (Dependency("image", allow_failure=True),)
    assert report.allow_dependency_failure


def test_python_lib_wait_input_skip_notify() -> None:
    pipeline = parse_pipeline((CORPUS / "python-lib.yml").read_text(), ENV)
    tox, wait, combine, notes, release = pipeline.steps
    assert isinstance(tox, CommandStep) and tox.matrix is not None
    assert [c for c, _ in tox.matrix.combinations()] == [
        {"": "py311"},
        {"": "py312"},
        {"": "py313"},
    ]
    assert tox.retry_automatic[0].exit_statuses is None and tox.retry_automatic[0].limit == 2
    assert isinstance(wait, WaitStep) and wait.continue_on_failure
    assert wait.needs == (Dependency(tox.key, allow_failure=True),)
    assert isinstance(combine, CommandStep) and combine.cancel_on_build_failing
    assert isinstance(notes, BlockStep) and not notes.blocking and notes.needs == ()
    assert isinstance(notes.fields[0], TextField) and not notes.fields[0].required
    assert isinstance(release, CommandStep) and release.skip == "Releases are manual for now"
    assert release.priority == 5 and release.needs == (Dependency("notes"),)
    assert [(n.kind, n.targets) for n in pipeline.notify] == [
        ("email", ("dev@example.test",)), ("webhook", ("https://hooks.example.test/ci",)),
    ]  # fmt: skip


def test_ops_tasks_bare_list_and_string_steps() -> None:
    pipeline = parse_pipeline((CORPUS / "ops-tasks.yml").read_text(), ENV)
    refresh, wait, smoke, block, cleanup = pipeline.steps
    assert refresh.key == "refresh" and smoke.label == "smoke"
    assert isinstance(wait, WaitStep) and isinstance(block, BlockStep) and block.blocking
    assert smoke.needs == (Dependency("refresh"),)
    assert {n.key for n in block.needs} == {smoke.key, wait.key}
    assert cleanup.needs == (Dependency(block.key),)


# --- errors -----------------------------------------------------------------------------------


def test_yaml_errors_name_the_line() -> None:
    found = problems("steps:\n  - command: echo\n    key: [a\n  - wait\n")
    assert len(found) == 1 and found[0].startswith("line ")
    assert problems("steps:\n  - command: a\n    command: b\n")[0].startswith("line 3")
    assert problems("") == ["the pipeline is empty: it needs `steps`"]
    assert problems("just text") == ["a pipeline is a mapping with `steps`"]
    [unhashable] = problems("{{}}")  # found by the fuzz test: a mapping used as a key
    assert unhashable.startswith("line 1") and "cannot be a key" in unhashable


def test_unknown_keys_are_reported_by_name_and_step() -> None:
    found = problems(
        "steps:\n"
        "  - command: a\n    key: first\n    comand: typo\n"
        "  - wait: ~\n    label: w\n    timeout: 3\n"
        "colour: red\n"
    )
    assert found == [
        "colour: unknown top-level key `colour`",
        'steps[0] (key "first"): unknown key `comand` for a command step',
        'steps[1] ("w"): unknown key `timeout` for a wait step',
    ]
    # x- keys and anchor holders are fine.
    parse_pipeline("x-common: &c {timeout_in_minutes: 5}\nsteps:\n  - {command: a, <<: *c}\n")


def test_schema_errors_name_the_attribute() -> None:
    found = problems("steps:\n  - command: a\n    key: k\n    parallelism: many\n")
    assert found == ["steps[0] (key \"k\"): parallelism: 'many' is not of type 'integer'"]
    found = problems("steps:\n  - command: a\n    retry: {automatic: {limit: 11}}\n")
    assert "11 is greater than the maximum of 10" in found[0]


def test_dependency_problems() -> None:
    found = problems(
        "steps:\n"
        "  - {command: a, key: a, depends_on: c}\n"
        "  - {command: b, key: b, depends_on: a}\n"
        "  - {command: c, key: c, depends_on: [b]}\n"
    )
    assert found == ["steps: depends_on makes a cycle: a -> c -> b -> a"]
    assert problems("steps:\n  - {command: a, depends_on: nope}\n") == [
        "steps[0]: depends_on names an unknown step 'nope'"
    ]
    assert (
        "already used"
        in problems("steps:\n  - {command: a, key: x}\n  - {command: b, key: x}\n")[0]
    )


def test_plugins_are_reported_not_run() -> None:
    found = problems(
        "steps:\n  - command: make\n    key: build\n    plugins:\n"
        "      - docker-compose#v5.0.0: {run: app}\n      - ecr#v2.7.0\n"
    )
    assert found == [
        'steps[0] (key "build"): plugins are not run by Bastion (not allow-listed): '
        "docker-compose#v5.0.0, ecr#v2.7.0"
    ]


def test_semantic_checks() -> None:
    assert (
        "cannot be combined"
        in problems("steps:\n  - {command: a, if: 'build.branch == \"x\"', branches: main}\n")[0]
    )
    assert (
        "needs a `concurrency_group`" in problems("steps:\n  - {command: a, concurrency: 1}\n")[0]
    )
    assert (
        "at most 50"
        in problems(
            "steps:\n  - command: a\n    matrix: {setup: {a: [1,2,3,4,5,6,7,8], b: [1,2,3,4,5,6,7]}}\n"
        )[0]
    )
    assert "`if` does not parse" in problems("steps:\n  - {command: a, if: 'build.branch =='}\n")[0]
    assert (
        "groups cannot be nested"
        in problems(
            "steps:\n  - group: a\n    steps:\n      - group: b\n        steps: [{command: c}]\n"
        )[0]
    )
    assert "between 1 and 500" in problems("steps:\n  - {command: a, parallelism: 100000}\n")[0]


def test_interpolation() -> None:
    env = {"A": "1", "EMPTY": "", "LONG": "abcdefgh"}
    assert interpolate_text("$A ${A} $$A \\$A", env) == ("1 1 $A $A", [])
    assert interpolate_text("${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == ("d  d", [])
    assert interpolate_text("${LONG:2:3} ${LONG: -3}", env)[0] == "cde fgh"
    assert interpolate_text("${UNSET?is required}", env)[1] == ["${UNSET} is not set: is required"]
    # Values are interpolated after parsing: a variable cannot inject YAML.
    pipeline = parse_pipeline("steps:\n  - command: echo $X\n", {"X": "a\n  - command: rm -rf /"})
    assert len(pipeline.steps) == 1 and isinstance(pipeline.steps[0], CommandStep)
    # Pipeline env is available to the rest of the file.
    pipeline = parse_pipeline("env: {NAME: app}\nsteps:\n  - label: $NAME\n    command: x\n", {})
    assert pipeline.steps[0].label == "app"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('build.branch == "main"', True),
        ("build.branch != 'main'", False),
        ("build.branch =~ /^ma/ && !(build.number == 3)", True),
        ("build.message !~ /skip ci/i", False),
        ('build.env("DEPLOY") == "yes" || build.branch == "x"', True),
        ("build.pull_request.labels includes 'deploy'", True),
        ("build.tag == null // no tag", True),
    ],
)
def test_conditions(expression: str, expected: bool) -> None:
    context = {
        "build.branch": "main",
        "build.number": 7,
        "build.message": "Fix [SKIP CI]",
        "build.env": {"DEPLOY": "yes"},
        "build.pull_request.labels": ["deploy"],
    }
    assert compile_condition(expression).evaluate(context) is expected
