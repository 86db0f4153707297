"""Bastion's own step kinds (scan:, browser:, release:): validation, and their start in a build
on the real database (the runs to completion on real agents are in test_verification_e2e)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from bastion.core.models import AuditEvent
from bastion.errors.models import Deploy
from bastion.pipelines import services
from bastion.pipelines.models import BuildState, StepState, StepVerification
from bastion.pipelines.yaml import (
    BrowserStep,
    PipelineInvalid,
    ReleaseStep,
    ScanStep,
    parse_pipeline,
)
from bastion.scanning import services as scan_services
from bastion.scanning.models import Scan
from tests.api.conftest import ApiClient
from tests.factories import make_project
from tests.jobs.helpers import World
from tests.pipelines.helpers import Runner, fresh, make_pipeline, steps

KINDS = """
steps:
  - label: ":shield: scan staging"
    key: scan
    scan: { target: staging-shop, profile: lightning, fail_on: medium }
  - browser: { suite: smoke, environment: staging }
    key: smoke
    soft_fail: true
    branches: main
  - wait
  - key: release
    if: build.branch == "main"
    release: { version: "$BUILDKITE_COMMIT", environment: production, project: shop }
"""


def test_the_bastion_kinds_parse_into_typed_steps_with_their_dependencies() -> None:
    pipeline = parse_pipeline(KINDS, {"BUILDKITE_COMMIT": "abc123"})
    scan, smoke, wait, release = pipeline.steps
    assert isinstance(scan, ScanStep) and (scan.target, scan.profile, scan.fail_on) == (
        "staging-shop",
        "lightning",
        "medium",
    )
    assert scan.label == ":shield: scan staging"
    assert isinstance(smoke, BrowserStep) and (smoke.suite, smoke.environment) == (
        "smoke",
        "staging",
    )
    assert smoke.soft_fail.any and smoke.branches == ("main",) and smoke.label == "browser smoke"
    assert isinstance(release, ReleaseStep) and release.version == "abc123"
    assert (release.environment, release.project) == ("production", "shop")
    assert {d.key for d in release.needs} == {wait.key}
    assert release.condition is not None


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "steps:\n  - scan: {target: t, profil: deep}\n    key: s",
            'steps[0] (key "s"): unknown field `scan.profil`',
        ),
        (
            "steps:\n  - scan: {target: t}\n    key: s\n    timeout_in_minutes: 5",
            'steps[0] (key "s"): unknown key `timeout_in_minutes` for a scan step',
        ),
        (
            "steps:\n  - scan: {target: t, fail_on: severe}",
            "steps[0]: `scan.fail_on` must be one of info, low, medium, high, critical, none",
        ),
        (
            "steps:\n  - scan: {target: t, profile: nope}",
            "steps[0]: `scan.profile`: no profile 'nope'",
        ),
        ("steps:\n  - scan: {profile: deep}", "steps[0]: a scan step needs `scan.target`"),
        ("steps:\n  - scan: staging", "steps[0]: `scan` must be a mapping of its settings"),
        (
            "steps:\n  - browser: {suite: a, test: b}",
            "steps[0]: a browser step runs either `browser.suite` or `browser.test`",
        ),
        (
            "steps:\n  - browser: {suite: a, viewport: wide}",
            "steps[0]: unknown field `browser.viewport`",
        ),
        (
            "steps:\n  - release: {environment: prod}",
            "steps[0]: a release step needs `release.version`",
        ),
        (
            "steps:\n  - release: {version: [1, 2]}",
            "steps[0]: `release.version` must be a short text",
        ),
        (
            "steps:\n  - release: {version: v1}\n    soft_fail: perhaps",
            "steps[0]: soft_fail: 'perhaps' is not valid under any of the given schemas",
        ),
    ],
)
def test_bad_bastion_steps_are_reported_by_name_and_step(yaml: str, expected: str) -> None:
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(yaml)
    assert expected in caught.value.messages()


def test_an_invalid_bastion_step_is_refused_at_pipeline_creation(world: World) -> None:
    with pytest.raises(ValidationError) as caught:
        make_pipeline(world, "steps:\n  - scan: {target: t, fail_on: severe}")
    assert "`scan.fail_on` must be one of" in " ".join(caught.value.messages)


RELEASE = """
steps:
  - command: echo deploy
    key: deploy
  - release: { version: "$BUILDKITE_COMMIT", environment: production, project: shop }
    key: release
    depends_on: deploy
"""


def test_a_release_step_records_a_deploy_with_a_link_to_the_build(
    world: World, runner: Runner
) -> None:
    project = make_project(world.org, slug="shop")
    pipeline = make_pipeline(world, RELEASE)
    build = services.create_build(world.principal, pipeline, branch="main", commit="c0ffee1")
    assert not Deploy.objects.exists()  # not before the step it depends on passed
    runner.run()
    assert fresh(build).state == BuildState.PASSED
    deploy = Deploy.objects.get()
    assert (deploy.project, deploy.release, deploy.environment) == (
        project,
        "c0ffee1",
        "production",
    )
    assert deploy.source == f"{pipeline} #1"
    assert deploy.url == f"/o/{world.org.slug}/pipelines/{pipeline.slug}/builds/1/"
    verification = StepVerification.objects.get(step__build=build, step__key="release")
    assert (
        verification.deploy == deploy and verification.outcome == "c0ffee1 deployed to production"
    )
    audit = AuditEvent.objects.filter(organization=world.org)
    assert (
        audit.filter(action="errors.deploy").exists()
        and audit.filter(action="build.release").exists()
    )
    reply = ApiClient(user=world.owner).get(
        f"/organizations/{world.org.slug}/pipelines/{pipeline.slug}/builds/1"
    )
    by_key = {step["key"]: step for step in reply.body["steps"]}
    assert by_key["deploy"]["verification"] is None
    assert by_key["release"]["verification"] == {
        "kind": "release",
        "scan": None,
        "browser_run": None,
        "deploy": deploy.pk,
        "summary": {"project": "shop", "release": "c0ffee1", "environment": "production"},
        "outcome": "c0ffee1 deployed to production",
    }


def test_a_release_step_without_a_project_needs_a_single_project(world: World) -> None:
    make_project(world.org, slug="shop")
    make_project(world.org, slug="blog")
    yaml = "steps:\n  - release: {version: v1}\n    key: release"
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    assert fresh(build).state == BuildState.FAILED
    row = build.steps.get(key="release")
    assert "name the project with `release.project`" in row.skip_reason
    assert not Deploy.objects.exists()


SCAN = """
steps:
  - scan: { target: lab, fail_on: high }
    key: scan
  - scan: { target: missing }
    key: missing
    soft_fail: true
"""


def test_scan_steps_resolve_targets_in_the_organization_and_respect_verification(
    world: World,
) -> None:
    project = make_project(world.org, slug="shop")
    scan_services.create_target(world.principal, project, name="lab", base_url="http://10.9.9.9/")
    other = World()  # a target of the same name in another organization is not found
    scan_services.create_target(
        other.principal,
        make_project(other.org, slug="x"),
        name="missing",
        base_url="http://x.test/",
    )
    build = services.create_build(world.principal, make_pipeline(world, SCAN))
    assert steps(build) == {"scan": StepState.FAILED, "missing": StepState.SOFT_FAILED}
    rows = {row.key: row.skip_reason for row in build.steps.all()}
    assert "Verify the target's ownership" in rows["scan"]
    assert rows["missing"] == "no scan target 'missing' in this organization"
    assert fresh(build).state == BuildState.FAILED and not Scan.objects.exists()


def test_a_verified_target_gets_a_scan_whose_job_is_the_step_job(world: World) -> None:
    project = make_project(world.org, slug="shop")
    target = scan_services.create_target(
        world.principal, project, name="lab", base_url="http://127.0.0.1:9/"
    )
    scan_services.verify_target(world.principal, target)  # loopback: the administrator allow-list
    build = services.create_build(world.principal, make_pipeline(world, SCAN))
    scan = Scan.objects.get(target=target)
    row = build.steps.get(key="scan")
    assert row.state == StepState.RUNNING
    assert [j.job_id for j in row.jobs.all()] == [scan.job_id]
    assert scan.job is not None and scan.job.cluster == world.cluster
    assert StepVerification.objects.get(step=row).scan == scan
    assert AuditEvent.objects.filter(action="scan.start", organization=world.org).exists()


def test_a_browser_step_names_what_it_cannot_find(world: World) -> None:
    make_project(world.org, slug="shop")
    yaml = "steps:\n  - browser: {suite: smoke, environment: staging}\n    key: smoke"
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    assert fresh(build).state == BuildState.FAILED
    assert (
        build.steps.get(key="smoke").skip_reason == "no browser suite 'smoke' in this organization"
    )


def test_a_group_of_bastion_steps_passes_on_its_skip_and_if() -> None:
    yaml = """
steps:
  - group: verify
    key: verify
    skip: not today
    if: build.branch == "main"
    steps:
      - scan: {target: t}
      - release: {version: v1}
"""
    group, scan, release = parse_pipeline(yaml).steps
    assert isinstance(scan, ScanStep) and isinstance(release, ReleaseStep)
    assert scan.skip == release.skip == "not today"
    assert scan.condition is group.condition is not None and scan.group == "verify"
