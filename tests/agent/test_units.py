"""Agent pieces that need no server: tags, executors, secret names, retry delays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.agent.client import Retry
from bastion.agent.executors import EXECUTORS, executor_for
from bastion.agent.stream import secret_values
from bastion.agent.worker import job_base_env, parse_tags


def test_parse_tags() -> None:
    assert parse_tags("queue=deploy, os=linux,,") == {"queue": "deploy", "os": "linux"}
    for bad in ("queue", "=x"):
        with pytest.raises(ValueError):
            parse_tags(bad)


def test_executor_registry_knows_command_and_not_yet_built_kinds() -> None:
    assert executor_for("command") is EXECUTORS["command"]
    assert executor_for("teleport") is None


def test_secret_values_by_declaration_and_by_name() -> None:
    env = {"DB_PASSWORD": "pw-123456", "PLAIN": "visible", "CUSTOM": "declared-1", "X_TOKEN": ""}
    assert sorted(secret_values(env, ["CUSTOM"])) == ["declared-1", "pw-123456"]


def test_plain_key_names_are_secret_but_not_bastions_own_step_keys() -> None:
    env = {
        "DEPLOY_KEY": "deploy-key-1",
        "stripe_key": "sk-lower-2",
        "KEY": "bare-word",
        "KEYBOARD": "layout",
        "BUILDKITE_STEP_KEY": "build",
        "BASTION_STEP_KEY": "build",
        "BUILDKITE_API_KEY": "bk-api-3",
        "BUILDKITE_AGENT_ACCESS_TOKEN": "bk-token-4",
    }
    assert sorted(secret_values(env, [])) == [
        "bk-api-3", "bk-token-4", "deploy-key-1", "sk-lower-2",
    ]  # fmt: skip


def test_retry_delay_is_bounded_and_honours_retry_after() -> None:
    retry = Retry(attempts=3, base_s=0.5, max_s=2.0)
    assert all(0.25 <= retry.delay(0) <= 0.5 for _ in range(20))
    assert retry.delay(10) <= 2.0
    assert retry.delay(0, "1") == 1.0 and retry.delay(0, "999") == 2.0


def test_jobs_do_not_inherit_bastion_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_DATABASE_URL", "postgres://secret@db/x")
    monkeypatch.setenv("BASTION_AGENT_TOKEN", "bstagt_x")
    env = job_base_env()
    assert not any(name.startswith("BASTION_") for name in env)
    assert "PATH" in env


class _Scripted:
    """A loopback HTTP server answering each request with the next (status, body) of a script."""

    def __init__(self, script: list[tuple[int, str]]) -> None:
        import http.server
        import threading

        self.script = list(script)
        self.requests = 0
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.sessions: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests += 1
                status, body = outer.script.pop(0) if outer.script else (500, "{}")
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(self.rfile.read(length))
                outer.paths.append(self.path)
                outer.sessions.append(self.headers.get("X-Bastion-Session"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("script", "outcome", "requests"),
    [
        ([(503, "{}"), (429, "{}"), (200, '{"received_at": "now"}')], "ok", 3),
        ([(401, '{"detail": "revoked"}')], "Unauthorized", 1),
        ([(409, '{"detail": "finished"}')], "Refused", 1),
        ([(500, "{}")] * 3, "Unavailable", 3),
        ([(200, "<html>a proxy page</html>")] * 3, "Unavailable", 3),
    ],
)
def test_client_retries_only_retryable_errors(
    script: list[tuple[int, str]], outcome: str, requests: int
) -> None:
    from bastion.agent import client as agent_client

    server = _Scripted(script)
    api = agent_client.AgentClient(server.url, retry=Retry(attempts=3, base_s=0.01, max_s=0.02))
    try:
        if outcome == "ok":
            assert api.request("POST", "/heartbeat", "t") == {"received_at": "now"}
        else:
            with pytest.raises(getattr(agent_client, outcome)):
                api.request("POST", "/heartbeat", "t")
        assert server.requests == requests
    finally:
        api.close()
        server.close()


def test_values_a_job_adds_to_its_redactions_file_are_redacted_before_upload(
    tmp_path: Path,
) -> None:
    """``bastion secret get`` appends the value it prints to the file the agent named in
    BASTION_REDACTIONS_FILE; the next chunk the agent uploads has it masked."""
    from bastion.agent import client as agent_client
    from bastion.agent.stream import LogStreamer

    server = _Scripted([(200, '{"truncated": false}')] * 2)
    api = agent_client.AgentClient(server.url, retry=Retry(attempts=1, base_s=0.01, max_s=0.02))
    job = agent_client.AcceptedJob(1, "command", "x", {}, None, "bstjob_" + "t" * 30)
    redactions = tmp_path / "redactions.jsonl"
    streamer = LogStreamer(api, job, [], redactions=redactions)
    try:
        streamer.write("before any secret\n")
        streamer.flush()
        redactions.write_text(json.dumps("s3cret-from-get") + "\n" + '"partial')
        streamer.write("got s3cret-from-get\n")
        streamer.flush(final=True)
    finally:
        api.close()
        server.close()
    sent = [json.loads(body)["data"] for body in server.bodies]
    assert sent == ["before any secret\n", "got [REDACTED]\n"]


def test_the_final_flush_holds_its_last_chunk_back_for_finish() -> None:
    """With ``hold_last`` the last piece of the final flush (redacted, numbered after every
    uploaded chunk) is kept for /finish; output longer than one chunk still goes through /log."""
    from bastion.agent import client as agent_client
    from bastion.agent.stream import CHUNK_CHARS, LogStreamer

    server = _Scripted([(200, '{"truncated": false}')] * 3)
    api = agent_client.AgentClient(server.url, retry=Retry(attempts=1, base_s=0.01, max_s=0.02))
    job = agent_client.AcceptedJob(1, "command", "x", {}, None, "bstjob_" + "t" * 30, True)
    streamer = LogStreamer(api, job, ["hidden-value"], hold_last=True)
    try:
        streamer.write("early\n")
        streamer.flush()
        streamer.write("a" * CHUNK_CHARS + "tail hidden-value\n")
        streamer.flush(final=True)
    finally:
        api.close()
        server.close()
    sent = [json.loads(body) for body in server.bodies]
    assert [(c["seq"], len(c["data"])) for c in sent] == [(0, 6), (1, CHUNK_CHARS)]
    assert streamer.last_chunk == agent_client.LogChunk(2, "tail [REDACTED]\n")


def test_finish_sends_the_last_chunk_and_asks_for_the_next_job() -> None:
    from bastion.agent import client as agent_client

    intervals = {"poll_s": 1, "long_poll_s": 2, "heartbeat_s": 3, "job_status_s": 1}
    status = '"id": 1, "state": "passed", "cancel_requested": false, "cancel_reason": ""'
    accepted = {"id": 2, "kind": "command", "label": "", "payload": {"command": "true"}}
    accepted |= {"timeout_s": None, "token": "bstjob_next", "finish_takes_log": True}
    handed = json.dumps({"job": {"id": 2}, "accepted": accepted, "intervals": intervals})
    server = _Scripted(
        [
            (200, "{" + status + ', "next": ' + handed + "}"),
            (200, "{" + status + "}"),  # an older server: no next
        ]
    )
    api = agent_client.AgentClient(server.url, retry=Retry(attempts=1, base_s=0.01, max_s=0.02))
    job = agent_client.AcceptedJob(1, "command", "x", {}, None, "bstjob_" + "t" * 30, True)
    try:
        chunk = agent_client.LogChunk(4, "last\n")
        first = api.finish(job, 0, log=chunk, session="ses_secret")
        second = api.finish(job, 0)
    finally:
        api.close()
        server.close()
    assert first.status.state == "passed" and first.intervals is not None
    assert isinstance(first.next_job, agent_client.AcceptedJob) and first.next_job.id == 2
    assert first.next_job.finish_takes_log and first.next_job.token == "bstjob_next"
    assert second.next_job is None and second.intervals is None
    assert server.paths == ["/api/v1/agent/jobs/1/finish?next=true", "/api/v1/agent/jobs/1/finish"]
    assert server.sessions == ["ses_secret", None]
    bodies = [json.loads(body) for body in server.bodies]
    assert bodies[0]["log"] == {"seq": 4, "data": "last\n"} and "log" not in bodies[1]
