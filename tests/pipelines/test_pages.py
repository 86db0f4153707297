"""The pipelines pages: list with last builds, a pipeline's builds, a build's step graph with
its live log, and the start / unblock / retry / cancel actions, through the whole stack."""

from __future__ import annotations

from typing import Any

from django.test import Client

from bastion.core.models import AuditEvent, Role
from bastion.pipelines import services
from bastion.pipelines.models import Build, BuildJob, BuildState
from tests.factories import make_member
from tests.jobs.helpers import World
from tests.pipelines.helpers import Runner, fresh, make_pipeline, steps
from tests.web.conftest import login_client

YAML = """
steps:
  - command: echo compile
    key: compile
  - block: Ship?
    key: ship
    fields:
      - {text: Version, key: version, format: "v[0-9]+"}
      - select: Where
        key: where
        options: [{label: Staging, value: staging}, {label: Prod, value: prod}]
  - command: echo deploy
    key: deploy
"""


def _client(world: World) -> Client:
    return login_client(world.owner)


def test_list_pipeline_and_build_pages(world: World, runner: Runner) -> None:
    client = _client(world)
    empty = client.get(f"/o/{world.org.slug}/pipelines/").content.decode()
    assert "No pipelines yet" in empty
    pipeline = make_pipeline(world, YAML)
    build = services.create_build(world.principal, pipeline, message="first")
    html = client.get(f"/o/{world.org.slug}/pipelines/").content.decode()
    assert "#1" in html and "badge-blue" in html and pipeline.name in html
    html = client.get(f"/o/{world.org.slug}/pipelines/app/").content.decode()
    assert "first" in html and "pipeline.yml" in html and "Start build" in html
    job = runner.take()
    assert job is not None
    page = client.get(f"/o/{world.org.slug}/pipelines/app/builds/1/?job={job.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="step-compile"' in html and 'id="step-ship"' in html and "echo compile" in html
    assert f"/o/{world.org.slug}/jobs/{job.pk}/log/" in html  # the live log of the chosen job
    assert 'hx-trigger="every 2s"' in html
    live = client.get(f"/o/{world.org.slug}/pipelines/app/builds/1/live/")
    assert live.status_code == 200 and 'id="build-live"' in live.content.decode()
    runner.finish(job)
    html = client.get(f"/o/{world.org.slug}/pipelines/app/builds/1/").content.decode()
    assert 'name="field-version"' in html and '<option value="prod"' in html
    assert fresh(build).state == BuildState.BLOCKED


def test_actions_start_unblock_retry_cancel(world: World, runner: Runner) -> None:
    client = _client(world)
    make_pipeline(world, YAML)
    base = f"/o/{world.org.slug}/pipelines/app/builds/"
    assert 'name="env"' in client.get(f"/o/{world.org.slug}/pipelines/app/").content.decode()
    bad = client.post(base, {"env": "GOOD=1\nnot a pair"}, follow=True)
    assert "Environment line 2: write KEY=VALUE." in bad.content.decode()
    bad = client.post(base, {"env": "1BAD=x"}, follow=True)
    assert "Not a variable name: &#x27;1BAD&#x27;" in bad.content.decode()
    assert not Build.objects.exists()
    started = client.post(
        base,
        {"branch": "main", "commit": "abc", "message": "from ui", "env": "A=1\r\n\nB=x=y\n"},
    )
    assert started.status_code == 302 and started["Location"] == f"{base}1/"
    build = Build.objects.get()
    assert build.source == "ui" and build.commit == "abc" and build.env == {"A": "1", "B": "x=y"}
    first = runner.take()
    assert first is not None and first.payload["env"]["B"] == "x=y"
    runner.finish(first)
    bad = client.post(f"{base}1/unblock/", {"step": "ship", "field-version": "nope"}, follow=True)
    assert "Does not match the format" in bad.content.decode()
    ok = client.post(
        f"{base}1/unblock/", {"step": "ship", "field-version": "v1", "field-where": "prod"}
    )
    assert ok.status_code == 302 and fresh(build).meta_data == {"version": "v1", "where": "prod"}
    runner.run(exit_status=9)
    assert fresh(build).state == BuildState.FAILED
    failed = BuildJob.objects.get(build=build, step__key="deploy")
    assert client.post(f"{base}1/retry/", {"build_job": failed.pk}).status_code == 302
    assert fresh(build).state == BuildState.RUNNING and steps(build)["deploy"] == "running"
    assert "Cancel build" in client.get(f"{base}1/live/").content.decode()
    assert client.post(f"{base}1/cancel/").status_code == 302
    assert fresh(build).state == BuildState.CANCELED
    # The live part (refreshed while the build runs) drops the button once it has finished.
    assert "Cancel build" not in client.get(f"{base}1/live/").content.decode()
    assert client.post(f"{base}1/retry/", {"build_job": "x"}).status_code == 404
    actions = set(
        AuditEvent.objects.filter(action__startswith="build.").values_list("action", flat=True)
    )
    assert {"build.create", "build.unblock", "build.retry_job", "build.cancel"} <= actions


def test_viewers_read_but_cannot_act(world: World, django_capture_on_commit_callbacks: Any) -> None:
    make_pipeline(world, YAML)
    services.create_build(world.principal, world.org.pipelines.get())
    viewer = login_client(make_member(world.org, Role.VIEWER))
    base = f"/o/{world.org.slug}/pipelines/app/"
    assert viewer.get(base).status_code == 200
    html = viewer.get(f"{base}builds/1/").content.decode()
    assert "Cancel build" not in html and "Start build" not in viewer.get(base).content.decode()
    assert viewer.post(f"{base}builds/1/cancel/").status_code == 403
    assert viewer.post(f"{base}builds/").status_code == 403
    assert Build.objects.count() == 1 and Build.objects.get().cancel_requested_at is None


MANUAL = """
steps:
  - command: echo again
    key: again
    retry: {manual: {permit_on_passed: true}}
  - command: echo once
    key: once
    depends_on: ~
  - command: deploy
    key: deploy
    depends_on: ~
    retry: {manual: {allowed: false, reason: "deploys are never retried"}}
"""


def test_retry_button_follows_retry_manual(world: World, runner: Runner) -> None:
    client = _client(world)
    build = services.create_build(world.principal, make_pipeline(world, MANUAL))
    agents = [runner, Runner.of(world, runner.capture, "b"), Runner.of(world, runner.capture, "c")]
    jobs = {job.label: job for job in (agent.take() for agent in agents) if job is not None}
    runner.finish(jobs["echo again"])
    runner.finish(jobs["echo once"])
    runner.finish(jobs["deploy"], 1)
    assert fresh(build).state == BuildState.FAILED
    base = f"/o/{world.org.slug}/pipelines/app/builds/1/"
    html = client.get(base).content.decode()
    by_key = {b.step.key: b for b in BuildJob.objects.filter(build=build)}
    # A passed job: retried only where permit_on_passed says so; a failed one never when
    # retry.manual is off, and the page says why.
    assert f'name="build_job" value="{by_key["again"].pk}"' in html
    assert f'name="build_job" value="{by_key["once"].pk}"' not in html
    assert f'name="build_job" value="{by_key["deploy"].pk}"' not in html
    assert "Cannot be retried: deploys are never retried" in html
    refused = client.post(f"{base}retry/", {"build_job": by_key["once"].pk}, follow=True)
    assert "does not permit retrying it" in refused.content.decode()
    refused = client.post(f"{base}retry/", {"build_job": by_key["deploy"].pk}, follow=True)
    assert "deploys are never retried" in refused.content.decode()
    assert client.post(f"{base}retry/", {"build_job": by_key["again"].pk}).status_code == 302
    # The build reopens (failing: deploy still failed) and ends failed again after the rerun.
    assert steps(build)["again"] == "running" and fresh(build).state == BuildState.FAILING
    assert runner.run().label == "echo again"
    assert fresh(build).state == BuildState.FAILED
    retried = AuditEvent.objects.filter(action="build.retry_job").values_list("changes", flat=True)
    assert list(retried) == [{"step": "again", "job": by_key["again"].job_id, "attempt": 1}]


def test_build_page_lists_artifacts_and_downloads_them_as_attachments(
    world: World, runner: Runner
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from bastion.jobs import dispatch

    client = _client(world)
    build = services.create_build(world.principal, make_pipeline(world, YAML))
    job = runner.take()
    assert job is not None
    dispatch.upload_artifact(job, "out/report.html", SimpleUploadedFile("r", b"<script>x</script>"))
    runner.finish(job)
    base = f"/o/{world.org.slug}/pipelines/app/builds/1/"
    artifact = job.artifacts.get()
    html = client.get(base).content.decode()
    assert f'href="{base}artifacts/?id={artifact.pk}"' in html and "out/report.html" in html
    listing = client.get(f"{base}artifacts/").content.decode()
    assert "out/report.html" in listing and "echo compile" in listing
    download = client.get(f"{base}artifacts/?id={artifact.pk}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"<script>x</script>"  # type: ignore[attr-defined]
    # Never rendered by the browser: an attachment of no particular type.
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith('attachment; filename="report.html"')
    assert download["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"{base}artifacts/?id=x").status_code == 404
    # Another organization's artifact is not found through this build.
    other = World(cluster_name="elsewhere")
    theirs = services.create_build(other.principal, make_pipeline(other, YAML, slug="o"))
    their_runner = Runner.of(other, runner.capture, "theirs")
    their_job = their_runner.take()
    assert their_job is not None and fresh(theirs).pk != build.pk
    dispatch.upload_artifact(their_job, "secret.txt", SimpleUploadedFile("s", b"theirs"))
    stolen = their_job.artifacts.get()
    assert client.get(f"{base}artifacts/?id={stolen.pk}").status_code == 404


def test_a_step_with_allowed_teams_offers_unblock_only_to_those_roles(world: World) -> None:
    yaml = "steps:\n  - block: Deploy?\n    key: gate\n    allowed_teams: [admins]\n"
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    member = login_client(make_member(world.org, Role.MEMBER))
    base = f"/o/{world.org.slug}/pipelines/app/builds/1/"
    html = member.get(base).content.decode()
    assert "Only admins and above may unblock this step." in html
    assert f'action="{base}unblock/"' not in html
    refused = member.post(f"{base}unblock/", {"step": "gate"}, follow=True)
    assert "not you" in refused.content.decode() and steps(build)["gate"] == "blocked"
    assert f'action="{base}unblock/"' in _client(world).get(base).content.decode()
    assert _client(world).post(f"{base}unblock/", {"step": "gate"}).status_code == 302
    assert steps(build)["gate"] == "passed"


def test_build_page_shows_durations_skip_reasons_and_links_triggered_builds(
    world: World, runner: Runner
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from bastion.pipelines.models import BuildStep

    make_pipeline(world, "steps:\n  - command: echo child\n", slug="child")
    yaml = """
steps:
  - {key: compile, command: echo compile}
  - {key: docs, command: echo docs, skip: "docs are built nightly"}
  - {key: deploy, trigger: child, depends_on: compile}
"""
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    runner.run()
    started = timezone.now() - timedelta(minutes=2)
    BuildStep.objects.filter(build=build, key="compile").update(
        started_at=started, finished_at=started + timedelta(seconds=65)
    )
    client = _client(world)
    html = client.get(f"/o/{world.org.slug}/pipelines/app/builds/1/").content.decode()
    assert "1m 05s" in html  # the step's duration
    assert "docs are built nightly" in html  # the skip reason the file gave
    child = BuildStep.objects.get(build=build, key="deploy").triggered_build
    assert child is not None
    assert f'href="/o/{world.org.slug}/pipelines/child/builds/{child.number}/"' in html
    child_html = client.get(f"/o/{world.org.slug}/pipelines/child/builds/1/").content.decode()
    assert f'triggered by <a href="/o/{world.org.slug}/pipelines/app/builds/1/">app #1</a>' in (
        child_html
    )
