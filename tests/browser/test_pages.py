"""The browser-test pages: list, test with steps and history, run with per-step results,
screenshots as pictures, video, and the baseline comparison with its one-click accept."""

from __future__ import annotations

import io
import json
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from bastion.browser import runs, services
from bastion.browser.models import Baseline, BrowserRun
from bastion.core.models import AuditEvent, Role
from bastion.jobs import dispatch
from bastion.jobs.artifacts import upload_artifact
from tests.factories import make_member, make_project
from tests.jobs.helpers import World
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db(transaction=True)

TEST = {
    "name": "Checkout",
    "start_url": "/",
    "steps": [{"click": "#buy"}, {"assert_text": "Thanks", "target": "#out"}],
}


def _png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, format="PNG")
    return out.getvalue()


def _finished_run(world: World, project: object, png: bytes) -> BrowserRun:
    stored = services.save_test(world.principal, project, TEST)  # type: ignore[arg-type]
    run = runs.start_run(world.principal, project, runs.RunRequest(test=stored))  # type: ignore[arg-type]
    agent, _ = world.agent()
    job = dispatch.poll(agent)
    assert job is not None
    dispatch.accept(agent, job.pk)
    dispatch.start(job)
    job.refresh_from_db()
    steps = [
        {"index": "1", "action": "click", "name": "", "status": "passed", "duration_ms": 40.0},
        {
            "index": "2",
            "action": "assert_text",
            "name": "",
            "status": "failed",
            "duration_ms": 900.0,
            "error": "text of #out is 'Sorry', expected 'Thanks'",
            "screenshot": "screenshots/002-step-2.png",
        },
    ]
    result = {
        "test": "Checkout",
        "status": "failed",
        "started_at": "",
        "duration_ms": 940.0,
        "steps": steps,
        "final_screenshot": "screenshots/final.png",
        "video": "video.webm",
    }
    files = {
        runs.RESULTS_FILE: json.dumps([result]).encode(),
        "artifacts/001/screenshots/002-step-2.png": png,
        "artifacts/001/screenshots/final.png": png,
        "artifacts/001/video.webm": b"\x1aE\xdf\xa3 not really a video",
    }
    for path, content in files.items():
        upload_artifact(job, path, SimpleUploadedFile("f", content))
    dispatch.finish(job, 1)
    run.refresh_from_db()
    assert run.status == "failed"
    return run


def test_run_page_shows_steps_screenshots_video_and_accepts_a_baseline() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    run = _finished_run(world, project, _png("#3366cc"))
    client = login_client(world.owner)
    org = world.org.slug

    url = reverse("web:browser-run", kwargs={"org": org, "project": "shop", "run_id": run.pk})
    html = unescape(client.get(url).content.decode())
    assert "text of #out is 'Sorry', expected 'Thanks'" in html
    assert "No baseline yet." in html and "Accept as baseline" in html
    files = url + "files/"
    shot = f'src="{files}?job={run.job_id}&path=artifacts%2F001%2Fscreenshots%2F002-step-2.png"'
    assert shot in html
    assert f'<video controls width="640" src="{files}?job={run.job_id}' in html

    picture = client.get(f"{files}?job={run.job_id}&path=artifacts/001/screenshots/final.png")
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"
    assert b"".join(picture.streaming_content) == _png("#3366cc")  # type: ignore[attr-defined]
    assert client.get(f"{files}?job={run.job_id}&path=browser-results.json")["Content-Type"] == (
        "application/octet-stream"
    )
    assert client.get(f"{files}?job={run.job_id}&path=nope.png").status_code == 404
    listing = client.get(files).content.decode()
    assert "artifacts/001/video.webm" in listing

    viewer = login_client(make_member(world.org, Role.VIEWER))
    assert viewer.post(url + "accept/", {"result": "0"}).status_code == 403
    assert not Baseline.objects.exists()
    accepted = client.post(url + "accept/", {"result": "0"})
    assert accepted.status_code == 302
    baseline = Baseline.objects.get()
    assert (baseline.test.slug, baseline.run_id, baseline.name) == ("checkout", run.pk, "final")
    assert AuditEvent.objects.filter(action="browser.baseline.accept").count() == 1
    html = client.get(url).content.decode()
    assert "matches the baseline" in html and f"?baseline={baseline.pk}" in html
    assert client.get(f"{files}?baseline={baseline.pk}").status_code == 200
    assert client.post(url + "accept/", {"result": "7"}).status_code == 404

    # The next run looks different: the page says so and shows where, in red.
    changed = _finished_run(world, project, _png("#cc3333"))
    url = reverse("web:browser-run", kwargs={"org": org, "project": "shop", "run_id": changed.pk})
    html = client.get(url).content.decode()
    assert "differs from the baseline" in html and "100.00% of pixels changed" in html
    diff = client.get(url + "files/", {"diff": "0"})
    assert diff.status_code == 200 and diff["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(diff.content)) as image:
        assert image.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    assert client.get(url + "files/", {"diff": "3"}).status_code == 404


def test_list_and_test_pages_show_steps_and_history() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    run = _finished_run(world, project, _png("#ffffff"))
    client = login_client(world.owner)
    org = world.org.slug

    landing = client.get(reverse("web:browser", kwargs={"org": org})).content.decode()
    assert "Checkout" in landing and "0.0%" in landing
    page = client.get(
        reverse("web:browser-test", kwargs={"org": org, "project": "shop", "test": "checkout"})
    ).content.decode()
    assert "Pass rate 0.0% over 1 run" in page
    assert f"#{run.pk}" in page and "assert_text" in page
    assert "expected" in unescape(page)  # the last result of step 2

    start = reverse("web:browser-run-start", kwargs={"org": org, "project": "shop"})
    started = client.post(start, {"test": "checkout"})
    assert started.status_code == 302
    newest = BrowserRun.objects.order_by("-pk").first()
    assert newest is not None and newest.pk != run.pk
    assert started["Location"].endswith(f"/runs/{newest.pk}/")

    services.create_suite(world.principal, project, slug="nightly", tests=["checkout"])
    assert "Run suite" in client.get(reverse("web:browser", kwargs={"org": org})).content.decode()
    suite_run = client.post(start, {"suite": "nightly"})
    assert suite_run.status_code == 302
    assert BrowserRun.objects.order_by("-pk").values_list("suite__slug", flat=True)[0] == "nightly"
    assert client.post(start, {"suite": "nope"}).status_code == 404
    refused = client.post(start, {}, follow=True)
    assert "Run either one test or one suite." in refused.content.decode()
