"""The agent API over HTTP (Django's test client, whole middleware stack)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.test import Client

from bastion.jobs import dispatch
from bastion.jobs.logs import TRUNCATION_NOTICE
from bastion.jobs.models import Artifact, Job, JobState
from tests.jobs.helpers import World

pytestmark = pytest.mark.django_db
AGENT = "/api/v1/agent"


class AgentHttp:
    def __init__(self, token: str = "") -> None:
        self.client = Client()
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        session: str | None = None,
    ) -> Any:
        token = self.token if token is None else token
        headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
        if session is not None:
            headers["HTTP_X_BASTION_SESSION"] = session
        data = b"" if body is None else json.dumps(body).encode()
        response = self.client.generic(
            method, AGENT + path, data, content_type="application/json", **headers
        )
        assert response["Content-Type"].startswith("application/json"), response.content
        return response.status_code, json.loads(response.content)


def register(world: World, tags: dict[str, str] | None = None) -> tuple[AgentHttp, dict[str, Any]]:
    status, body = AgentHttp().call(
        "POST",
        "/register",
        {"name": "http-agent", "tags": tags or {"queue": "default"}},
        token=world.token,
    )
    assert status == 200, body
    return AgentHttp(body["session_token"]), body


def test_full_protocol_over_http() -> None:
    world = World()
    agent, reg = register(world, {"queue": "default", "os": "linux"})
    assert reg["queue"] == "default" and reg["tags"] == {"os": "linux"}
    assert set(reg["intervals"]) == {"poll_s", "long_poll_s", "heartbeat_s", "job_status_s"}
    assert agent.call("POST", "/poll")[1]["job"] is None
    job = world.job("echo hi", label="hello")
    status, polled = agent.call("POST", "/poll?wait=0.5")
    assert status == 200 and polled["job"] == {"id": job.pk, "kind": "command", "label": "hello"}
    status, accepted = agent.call("POST", f"/jobs/{job.pk}/accept")
    assert status == 200 and accepted["payload"] == {"command": "echo hi"}
    runner = AgentHttp(accepted["token"])
    assert runner.call("POST", f"/jobs/{job.pk}/start")[1]["state"] == "running"
    assert agent.call("POST", "/heartbeat")[0] == 200
    assert runner.call("POST", f"/jobs/{job.pk}/log", {"seq": 0, "data": "hi\n"})[1]["stored"]
    retried = runner.call("POST", f"/jobs/{job.pk}/log", {"seq": 0, "data": "hi\n"})
    assert retried == (200, {"stored": False, "log_bytes": 3, "truncated": False})
    assert runner.call("GET", f"/jobs/{job.pk}")[1]["cancel_requested"] is False
    status, finished = runner.call("POST", f"/jobs/{job.pk}/finish", {"exit_status": 0})
    assert status == 200 and finished["state"] == "passed"
    assert agent.call("POST", "/disconnect") == (200, {"ok": True})
    assert agent.call("POST", "/poll")[0] == 401


def test_accept_with_start_marks_the_job_running_in_one_request() -> None:
    world = World()
    agent, _ = register(world)
    job = world.job("echo hi")
    assert agent.call("POST", "/poll?wait=0.5")[1]["job"]["id"] == job.pk
    status, first = agent.call("POST", f"/jobs/{job.pk}/accept?start=true")
    assert status == 200
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.started_at is not None
    started_at = job.started_at

    # A retry whose answer was lost: a new token, the old one void, the start time kept.
    status, again = agent.call("POST", f"/jobs/{job.pk}/accept?start=true")
    assert status == 200 and again["token"] != first["token"]
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.started_at == started_at
    assert AgentHttp(first["token"]).call("GET", f"/jobs/{job.pk}")[0] == 401
    runner = AgentHttp(again["token"])
    assert runner.call("POST", f"/jobs/{job.pk}/finish", {"exit_status": 0})[1]["state"] == "passed"
    assert agent.call("POST", f"/jobs/{job.pk}/accept?start=true")[0] == 409


def test_poll_with_accept_hands_out_the_running_job_and_again_if_the_answer_was_lost() -> None:
    world = World()
    agent, _ = register(world)
    assert agent.call("POST", "/poll?accept=true")[1]["accepted"] is None  # nothing to do
    job = world.job("echo hi")
    status, polled = agent.call("POST", "/poll?wait=0.5&accept=true")
    assert status == 200 and polled["job"]["id"] == job.pk
    assert polled["accepted"]["payload"] == {"command": "echo hi"}
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.started_at is not None

    # The agent polls again holding a job: that answer was lost. Same job, new token.
    status, again = agent.call("POST", "/poll?accept=true")
    assert again["accepted"]["id"] == job.pk
    assert again["accepted"]["token"] != polled["accepted"]["token"]
    runner = AgentHttp(again["accepted"]["token"])
    assert runner.call("POST", f"/jobs/{job.pk}/finish", {"exit_status": 0})[1]["state"] == "passed"
    # Without accept=true a running job is not handed out again (older agents).
    other = world.job("echo two")
    assert agent.call("POST", "/poll")[1]["job"]["id"] == other.pk
    agent.call("POST", f"/jobs/{other.pk}/accept?start=true")
    assert agent.call("POST", "/poll")[1]["job"] is None


def _log_rows(job: Job) -> list[tuple[int, str]]:
    return dispatch.read_log(job)


def test_finish_stores_the_last_log_chunk_as_the_log_endpoint_does(settings: Any) -> None:
    world = World()
    agent, _ = register(world)
    job = world.job(payload={"command": "x", "env": {"KEY": "s3cret-value"}, "secret_env": ["KEY"]})
    status, polled = agent.call("POST", "/poll?accept=true")
    assert polled["accepted"]["finish_takes_log"] is True
    runner = AgentHttp(polled["accepted"]["token"])
    assert runner.call("POST", f"/jobs/{job.pk}/log", {"seq": 0, "data": "first\n"})[1]["stored"]

    # Bad input changes nothing: a malformed chunk (400), one over the chunk limit (409).
    assert (
        runner.call(
            "POST", f"/jobs/{job.pk}/finish", {"exit_status": 0, "log": {"seq": -1, "data": "x"}}
        )[0]
        == 400
    )
    too_big = {"exit_status": 0, "log": {"seq": 1, "data": "x" * (1024 * 1024 + 1)}}
    status, body = runner.call("POST", f"/jobs/{job.pk}/finish", too_big)
    assert status == 409 and "at most" in body["detail"]
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and _log_rows(job) == [(0, "first\n")]

    # Stored with the same server-side redaction, in its place, before the job finishes.
    last = {"exit_status": 0, "log": {"seq": 1, "data": "key=s3cret-value done\n"}}
    status, body = runner.call("POST", f"/jobs/{job.pk}/finish", last)
    assert status == 200 and body["state"] == "passed" and body["next"] is None
    job.refresh_from_db()
    assert _log_rows(job) == [(0, "first\n"), (1, "key=[REDACTED] done\n")]
    log_bytes = job.log_bytes
    assert log_bytes == len("first\n") + len("key=[REDACTED] done\n")

    # The answer was lost and the agent retries: the same job state, no second chunk.
    assert runner.call("POST", f"/jobs/{job.pk}/finish", last)[1]["state"] == "passed"
    job.refresh_from_db()
    assert len(_log_rows(job)) == 2 and job.log_bytes == log_bytes
    # A finished job takes no other ending, and the chunk that came with it is not stored.
    other = {"exit_status": 1, "log": {"seq": 2, "data": "late\n"}}
    assert runner.call("POST", f"/jobs/{job.pk}/finish", other)[0] == 409
    assert len(_log_rows(job)) == 2

    # The same cap: a last chunk past it is cut and marked truncated.
    settings.BASTION_JOB_LOG_MAX_BYTES = 10
    capped = world.job("echo capped")
    polled = agent.call("POST", "/poll?accept=true")[1]["accepted"]
    runner = AgentHttp(polled["token"])
    status, body = runner.call(
        "POST", f"/jobs/{capped.pk}/finish", {"exit_status": 0, "log": {"seq": 0, "data": "y" * 50}}
    )
    assert status == 200 and body["state"] == "passed"
    capped.refresh_from_db()
    assert capped.log_truncated and capped.log_bytes == 10 + len(TRUNCATION_NOTICE)
    assert _log_rows(capped) == [(0, "y" * 10 + TRUNCATION_NOTICE)]


def test_an_old_style_finish_without_log_or_next_still_works() -> None:
    world = World()
    agent, _ = register(world)
    job = world.job("echo old")
    world.job("echo waits")  # a next job is there, but this agent did not ask for it
    job_id = agent.call("POST", "/poll")[1]["job"]["id"]
    runner = AgentHttp(agent.call("POST", f"/jobs/{job_id}/accept?start=true")[1]["token"])
    assert runner.call("POST", f"/jobs/{job.pk}/log", {"seq": 0, "data": "old\n"})[1]["stored"]
    status, body = runner.call("POST", f"/jobs/{job.pk}/finish", {"exit_status": 0})
    assert status == 200
    assert body == {
        "id": job.pk,
        "state": "passed",
        "cancel_requested": False,
        "cancel_reason": "",
        "next": None,
    }
    assert _log_rows(job) == [(0, "old\n")]
    assert Job.objects.filter(state=JobState.SCHEDULED).count() == 1


def test_finish_with_next_hands_out_the_next_job_and_again_if_the_answer_was_lost() -> None:
    world = World()
    agent, _ = register(world)
    first, second = world.job("echo one"), world.job("echo two")
    polled = agent.call("POST", "/poll?accept=true")[1]["accepted"]
    assert polled["id"] == first.pk
    runner = AgentHttp(polled["token"])
    done = {"exit_status": 0, "log": {"seq": 0, "data": "one\n"}}
    path = f"/jobs/{first.pk}/finish?next=true"

    status, body = runner.call("POST", path, done, session=agent.token)
    assert status == 200 and body["state"] == "passed"
    handed = body["next"]["accepted"]
    assert handed["id"] == second.pk and handed["payload"] == {"command": "echo two"}
    assert set(body["next"]["intervals"]) == {
        "poll_s",
        "long_poll_s",
        "heartbeat_s",
        "job_status_s",
    }
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.state == JobState.RUNNING and second.agent_id == first.agent_id

    # The answer was lost: the retried finish hands the same job out with a new token.
    status, again = runner.call("POST", path, done, session=agent.token)
    assert status == 200 and again["next"]["accepted"]["id"] == second.pk
    assert again["next"]["accepted"]["token"] != handed["token"]
    assert AgentHttp(handed["token"]).call("GET", f"/jobs/{second.pk}")[0] == 401
    assert len(_log_rows(first)) == 1

    # Nothing more to do: the answer says so at once (the agent then long-polls as usual).
    runner = AgentHttp(again["next"]["accepted"]["token"])
    status, body = runner.call(
        "POST", f"/jobs/{second.pk}/finish?next=true", {"exit_status": 3}, session=agent.token
    )
    assert status == 200 and body["state"] == "failed"
    assert body["next"]["job"] is None and body["next"]["accepted"] is None


def test_finish_with_next_needs_the_jobs_own_live_agent_session() -> None:
    world = World()
    agent, _ = register(world)
    other, _ = register(world)
    job = world.job("echo mine")
    waiting = world.job("echo waiting")
    runner = AgentHttp(agent.call("POST", "/poll?accept=true")[1]["accepted"]["token"])
    path = f"/jobs/{job.pk}/finish?next=true"
    done = {"exit_status": 0, "log": {"seq": 0, "data": "x\n"}}
    # The job token alone (the job's own commands hold it) reaches no other job.
    status, body = runner.call("POST", path, done)
    assert status == 400 and "X-Bastion-Session" in body["detail"]
    assert runner.call("POST", path, done, session=runner.token)[0] == 401
    assert runner.call("POST", path, done, session=other.token)[0] == 404  # not its job
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and not _log_rows(job)  # each refusal changed nothing
    assert Job.objects.get(pk=waiting.pk).state == JobState.SCHEDULED

    # An agent that is leaving gets no next job, even if it asks.
    leaving = {**done, "ignore_in_dispatches": True}
    status, body = runner.call("POST", path, leaving, session=agent.token)
    assert status == 200 and body["next"]["job"] is None
    assert Job.objects.get(pk=waiting.pk).state == JobState.SCHEDULED
    # A disconnected agent's session is refused like any poll of it.
    third = world.job("echo third", priority=5)
    token = other.call("POST", "/poll?accept=true")[1]["accepted"]["token"]
    assert other.call("POST", "/disconnect")[0] == 200
    status, _ = AgentHttp(token).call(
        "POST", f"/jobs/{third.pk}/finish?next=true", {"exit_status": 0}, session=other.token
    )
    assert status == 401


def test_finish_path_query_count(django_assert_max_num_queries: Any) -> None:
    world = World()
    agent, _ = register(world)
    first = world.job()
    world.job()
    runner = AgentHttp(agent.call("POST", "/poll?accept=true")[1]["accepted"]["token"])
    done = {"exit_status": 0, "log": {"seq": 0, "data": "x\n"}}
    with django_assert_max_num_queries(23):  # finish with its chunk, then one poll
        body = runner.call("POST", f"/jobs/{first.pk}/finish?next=true", done, session=agent.token)
    assert body[1]["next"]["accepted"] is not None


def test_bad_tokens_get_401_with_a_json_error() -> None:
    world = World()
    status, body = AgentHttp().call("POST", "/register", {"name": "x"}, token="bstagt_wrong")
    assert status == 401 and "detail" in body
    assert AgentHttp().call("POST", "/register", {"name": "x"})[0] == 401  # no header at all
    assert AgentHttp("nonsense").call("POST", "/poll")[0] == 401
    agent, _ = register(world)
    # A session token is not a registration token, nor a job token.
    assert AgentHttp().call("POST", "/register", {}, token=agent.token)[0] == 401
    job = world.job()
    assert agent.call("POST", "/poll")[1]["job"]["id"] == job.pk
    assert agent.call("POST", f"/jobs/{job.pk}/start")[0] == 401


def test_malformed_bodies_are_400_and_change_nothing() -> None:
    world = World()
    agent, _ = register(world)
    world.job()
    job_id = agent.call("POST", "/poll")[1]["job"]["id"]
    token = agent.call("POST", f"/jobs/{job_id}/accept")[1]["token"]
    runner = AgentHttp(token)
    assert runner.call("POST", f"/jobs/{job_id}/log", {"seq": -1, "data": "x"})[0] == 400
    assert runner.call("POST", f"/jobs/{job_id}/log", {"data": "x"})[0] == 400
    assert runner.call("POST", f"/jobs/{job_id}/finish", {"exit_status": "zero"})[0] == 400
    status, body = runner.call("POST", f"/jobs/{job_id}/finish", {"exit_status": 0})
    assert status == 200 and body["state"] == "passed"
    # A finished job takes no more log: 409 with a reason.
    status, body = runner.call("POST", f"/jobs/{job_id}/log", {"seq": 1, "data": "late"})
    assert status == 409 and "passed" in body["detail"]


def test_cluster_isolation_and_job_tokens_over_http() -> None:
    world = World("a")
    other_cluster = World("b", org=world.org)
    other_org = World("c")
    agent_a, _ = register(world)
    agent_b, _ = register(other_cluster)
    job_b = other_cluster.job("echo b")
    job_c = other_org.job("echo c")
    assert agent_a.call("POST", "/poll")[1]["job"] is None
    assert agent_a.call("POST", f"/jobs/{job_b.pk}/accept")[0] == 404
    assert agent_a.call("POST", f"/jobs/{job_c.pk}/accept")[0] == 404
    assert agent_b.call("POST", "/poll")[1]["job"]["id"] == job_b.pk
    assert agent_a.call("POST", f"/jobs/{job_b.pk}/accept")[0] == 404  # assigned to b, not a
    token_b = agent_b.call("POST", f"/jobs/{job_b.pk}/accept")[1]["token"]
    job_a = world.job("echo a")
    token_a = agent_a.call("POST", f"/jobs/{agent_a.call('POST', '/poll')[1]['job']['id']}/accept")[
        1
    ]["token"]
    runner_a = AgentHttp(token_a)
    # Job a's token cannot touch job b (or c) in any way.
    for method, path, body in [
        ("POST", f"/jobs/{job_b.pk}/start", None),
        ("GET", f"/jobs/{job_b.pk}", None),
        ("POST", f"/jobs/{job_b.pk}/log", {"seq": 0, "data": "x"}),
        ("POST", f"/jobs/{job_b.pk}/finish", {"exit_status": 0}),
        ("POST", f"/jobs/{job_c.pk}/finish", {"exit_status": 0}),
    ]:
        assert runner_a.call(method, path, body)[0] == 404
    assert not dispatch.read_log(job_b)
    assert Job.objects.get(pk=job_b.pk).state == JobState.ACCEPTED
    assert Job.objects.get(pk=job_c.pk).state == JobState.SCHEDULED
    assert AgentHttp(token_b).call("POST", f"/jobs/{job_b.pk}/start")[0] == 200
    assert runner_a.call("POST", f"/jobs/{job_a.pk}/start")[0] == 200


def test_poll_path_query_count(django_assert_max_num_queries: Any) -> None:
    world = World()
    agent, _ = register(world)
    with django_assert_max_num_queries(6):
        assert agent.call("POST", "/poll")[1]["job"] is None
    world.job()
    with django_assert_max_num_queries(10):
        assert agent.call("POST", "/poll")[1]["job"] is not None
    with django_assert_max_num_queries(6):
        assert agent.call("POST", "/poll")[1]["job"] is not None  # the same, still assigned


def test_artifact_upload_stores_content_and_sha256(settings: Any) -> None:
    world = World()
    agent, _ = register(world)
    world.job()
    job_id = agent.call("POST", "/poll")[1]["job"]["id"]
    token = agent.call("POST", f"/jobs/{job_id}/accept")[1]["token"]
    client = Client()
    content = b"<html>report</html>"

    def upload(path: str, data: bytes) -> Any:
        from django.core.files.uploadedfile import SimpleUploadedFile

        return client.post(
            f"{AGENT}/artifacts/{job_id}",
            {"path": path, "file": SimpleUploadedFile("r.html", data)},
            HTTP_AUTHORIZATION=f"Token {token}",
        )

    response = upload("reports/r.html", content)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest() and body["size"] == len(content)
    artifact = Artifact.objects.get(pk=body["id"])
    with artifact.file.open("rb") as stored:
        assert stored.read() == content
    assert upload("reports/r.html", content).json()["id"] == artifact.pk  # same content: no-op
    assert upload("reports/r.html", b"other").status_code == 409
    assert upload("../escape", content).status_code == 409
    settings.BASTION_ARTIFACT_MAX_BYTES = 4
    assert upload("big.bin", b"too large").status_code == 413
    assert Artifact.objects.count() == 1


def test_artifact_path_allows_bodies_larger_than_the_api_limit(settings: Any) -> None:
    import dataclasses

    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_body_bytes=2048)
    world = World()
    agent, _ = register(world)
    world.job()
    job_id = agent.call("POST", "/poll")[1]["job"]["id"]
    runner = AgentHttp(agent.call("POST", f"/jobs/{job_id}/accept")[1]["token"])
    status, body = runner.call("POST", f"/jobs/{job_id}/log", {"seq": 0, "data": "x" * 4096})
    assert status == 413 and "too large" in body["detail"]
    response = Client().post(
        f"{AGENT}/artifacts/{job_id}",
        {"path": "big.bin", "file": SimpleUploadedFile("big.bin", b"y" * 8192)},
        HTTP_AUTHORIZATION=f"Token {runner.token}",
    )
    assert response.status_code == 200 and response.json()["size"] == 8192
