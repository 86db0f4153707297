"""What a running job does to its own build with its job token, over the real HTTP stack:
meta-data, dynamic pipeline uploads, annotations, the build's artifacts; and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bastion.core.models import AuditEvent
from bastion.jobs import dispatch
from bastion.jobs.models import Agent, Job
from bastion.pipelines.models import Build, BuildStep
from bastion.pipelines.upload import splice
from bastion.pipelines.yaml import parse_pipeline
from tests.api.conftest import ApiClient
from tests.jobs.helpers import World
from tests.pipelines.helpers import fresh, make_pipeline, steps
from tests.web.conftest import login_client

YAML = """
steps:
  - command: ./generate
    key: generate
  - wait
  - command: echo deploy
    key: deploy
"""
UPLOAD = """
env:
  FROM_UPLOAD: "yes"
steps:
  - command: echo test one
  - command: echo test two
    key: two
    env: {FROM_UPLOAD: overridden}
"""


def _running(world: World, agent: Agent) -> tuple[Job, str]:
    """The next job for ``agent``, accepted and started; with its job token."""
    job = dispatch.poll(agent)
    assert job is not None
    accepted = dispatch.accept(agent, job.pk)
    return dispatch.start(job), accepted.token


def _finish(job: Job, capture: Any, exit_status: int = 0) -> None:
    with capture(execute=True):
        dispatch.finish(job, exit_status)


@pytest.fixture
def build(world: World) -> Build:
    from bastion.pipelines import services

    return services.create_build(world.principal, make_pipeline(world, YAML))


@pytest.fixture
def agent(world: World) -> Agent:
    return world.agent(name="runner")[0]


def base(job: Job) -> str:
    return f"/api/v1/agent/jobs/{job.pk}"


def test_meta_data_set_get_and_keys_are_audited_without_the_value(
    world: World, build: Build, agent: Agent
) -> None:
    job, token = _running(world, agent)
    client = ApiClient(token)
    set_ = client.call("POST", base(job) + "/meta-data", {"key": "release", "value": "s3cr3t-v1"})
    assert set_.status == 201
    assert client.call("GET", base(job) + "/meta-data/release").body["value"] == "s3cr3t-v1"
    assert client.call("GET", base(job) + "/meta-data").body == {"keys": ["release"]}
    assert client.call("GET", base(job) + "/meta-data/missing").status == 404
    assert fresh(build).meta_data == {"release": "s3cr3t-v1"}
    event = AuditEvent.objects.get(action="build.meta_data_set")
    assert event.changes == {"key": "release", "job": job.pk}
    assert "s3cr3t" not in str(event.changes) and event.organization_id == world.org.pk


def test_a_job_token_reaches_its_own_build_only(
    world: World, build: Build, agent: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    job, token = _running(world, agent)
    other_world = World(cluster_name="other")
    other = make_pipeline(other_world, YAML, slug="theirs")
    from bastion.pipelines import services

    services.create_build(other_world.principal, other)
    their_job, their_token = _running(other_world, other_world.agent(name="theirs")[0])
    mine = ApiClient(token)
    for method, path, body in [
        ("GET", "/meta-data", None),
        ("POST", "/meta-data", {"key": "k", "value": "v"}),
        ("POST", "/pipeline", {"yaml": "steps: [{command: evil}]"}),
        ("POST", "/annotations", {"body": "pwned"}),
        ("GET", "/build-artifacts", None),
    ]:
        assert mine.call(method, base(their_job) + path, body).status == 404
        assert ApiClient("bstjob_nonsense").call(method, base(job) + path, body).status == 401
    assert their_token != token
    # An organization API token is not a job token.
    assert ApiClient("bstapi_x").call("GET", base(job) + "/meta-data").status == 401
    # A job that is no pipeline job has no build.
    world.job("echo plain")
    plain, plain_token = _running(world, world.agent(name="second")[0])
    assert ApiClient(plain_token).call("GET", base(plain) + "/meta-data").status == 404
    assert Build.objects.get(pipeline=other).meta_data == {}
    # After its job finished, a token writes nothing any more.
    _finish(job, django_capture_on_commit_callbacks)
    late = mine.call("POST", base(job) + "/meta-data", {"key": "k", "value": "v"})
    assert late.status == 409
    assert fresh(build).meta_data == {}


def test_upload_inserts_steps_after_the_uploader_and_the_wait_waits_for_them(
    world: World, build: Build, agent: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    job, token = _running(world, agent)
    client = ApiClient(token)
    bad = client.call("POST", base(job) + "/pipeline", {"yaml": "steps:\n  - comand: x\n"})
    assert bad.status == 400 and "yaml" in str(bad.body)
    assert set(steps(fresh(build))) == {"generate", "step-2", "deploy"}
    done = client.call("POST", base(job) + "/pipeline", {"yaml": UPLOAD})
    assert done.status == 201 and done.body == {"added": ["upload-1-1", "two"]}
    rows = list(BuildStep.objects.filter(build=build).order_by("position"))
    assert [r.key for r in rows] == ["generate", "upload-1-1", "two", "step-2", "deploy"]
    wait = next(r for r in rows if r.key == "step-2")
    assert {n["key"] for n in wait.needs} == {"generate", "upload-1-1", "two"}
    event = AuditEvent.objects.get(action="build.pipeline_upload")
    assert event.changes["added"] == ["upload-1-1", "two"]
    # The uploaded steps run (with the upload's env) while the uploader still runs.
    ran: dict[str, dict[str, str]] = {}
    helper = world.agent(name="helper")[0]
    for _ in range(2):
        started, _token = _running(world, helper)
        ran[started.payload["env"]["BASTION_STEP_KEY"]] = started.payload["env"]
        _finish(started, django_capture_on_commit_callbacks)
    assert ran["upload-1-1"]["FROM_UPLOAD"] == "yes" and ran["two"]["FROM_UPLOAD"] == "overridden"
    assert steps(fresh(build))["deploy"] == "waiting"
    _finish(job, django_capture_on_commit_callbacks)
    last, _token = _running(world, agent)
    assert last.payload["env"]["BASTION_STEP_KEY"] == "deploy"
    _finish(last, django_capture_on_commit_callbacks)
    assert fresh(build).state == "passed"


def test_annotations_replace_append_and_show_on_the_build(
    world: World, build: Build, agent: Agent
) -> None:
    job, token = _running(world, agent)
    client = ApiClient(token)
    url = base(job) + "/annotations"
    assert client.call("POST", url, {"body": "**1 failure**", "style": "error"}).status == 201
    assert (
        client.call("POST", url, {"body": " and more", "append": True, "style": "error"}).status
        == 201
    )
    assert (
        client.call("POST", url, {"body": "ok", "context": "cov", "style": "success"}).status == 201
    )
    assert client.call("POST", url, {"body": "x", "style": "loud"}).status == 400
    assert client.call("POST", url, {"body": "x", "context": "bad context!"}).status == 400
    from bastion.pipelines.schemas import BuildOut

    notes = BuildOut.detail(fresh(build)).annotations
    assert [(n.context, n.style, n.body) for n in notes] == [
        ("default", "error", "**1 failure** and more"),
        ("cov", "success", "ok"),
    ]
    assert AuditEvent.objects.filter(action="build.annotate").count() == 3
    page = login_client(world.owner).get(
        f"/o/{world.org.slug}/pipelines/{build.pipeline.slug}/builds/{build.number}/"
    )
    html = page.content.decode()
    assert page.status_code == 200 and "Annotation cov" in html and "**1 failure** and more" in html
    sneaky = client.call("POST", url, {"body": "<script>alert(1)</script>", "context": "x"})
    assert sneaky.status == 201
    html = login_client(world.owner).get(page.wsgi_request.path).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_a_later_job_downloads_an_earlier_jobs_artifact(
    world: World, build: Build, agent: Agent, django_capture_on_commit_callbacks: Any
) -> None:
    job, _token = _running(world, agent)
    dispatch.upload_artifact(job, "out/report.txt", SimpleUploadedFile("r", b"all good"))
    _finish(job, django_capture_on_commit_callbacks)
    later, later_token = _running(world, agent)
    client = ApiClient(later_token)
    listed = client.call("GET", base(later) + "/build-artifacts?pattern=out/*.txt")
    assert [a["path"] for a in listed.body] == ["out/report.txt"]
    assert client.call("GET", base(later) + "/build-artifacts?pattern=*.png").body == []
    download = client.call("GET", base(later) + f"/build-artifacts/{listed.body[0]['id']}")
    assert download.status == 200 and download.raw == b"all good"
    # Another organization's build cannot name it.
    other_world = World(cluster_name="other")
    from bastion.pipelines import services

    services.create_build(other_world.principal, make_pipeline(other_world, YAML, slug="o"))
    theirs, their_token = _running(other_world, other_world.agent(name="o")[0])
    stolen = ApiClient(their_token).call(
        "GET", base(theirs) + f"/build-artifacts/{listed.body[0]['id']}"
    )
    assert stolen.status == 404


def test_splice_keeps_automatic_keys_of_the_steps_after_the_insertion() -> None:
    original = "steps:\n  - command: a\n  - command: gen\n    key: gen\n  - wait\n  - command: z\n"
    merged = splice(original, "steps:\n  - command: new\n  - wait\n  - command: newer\n", "gen")
    keys = [s.key for s in parse_pipeline(merged, {}).steps]
    assert keys == ["step-1", "gen", "upload-1-1", "upload-1-2", "upload-1-3", "step-3", "step-4"]
    again = splice(merged, "steps:\n  - command: third\n", "upload-1-3")
    assert [s.key for s in parse_pipeline(again, {}).steps] == [
        "step-1", "gen", "upload-1-1", "upload-1-2", "upload-1-3", "upload-2-1", "step-3", "step-4",
    ]  # fmt: skip
