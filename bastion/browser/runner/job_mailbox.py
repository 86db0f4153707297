"""The agent's ``Mailbox``: email steps read the run's mail from the server through the agent API
(``GET /api/v1/agent/jobs/{id}/mail``) with the job's token — agents never touch the database.

A refusal (another run's address, a finished job, a bad token) fails the step at once with the
server's reason; a server that does not answer is retried by the step's own polling until its
timeout, whose message then names the last error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bastion.browser.runner.errors import StepFailure
from bastion.browser.runner.mailbox import Email

ENDPOINT_ENV = "BASTION_AGENT_ENDPOINT"
JOB_ID_ENV = "BASTION_JOB_ID"
TOKEN_ENV = "BASTION_AGENT_ACCESS_TOKEN"  # noqa: S105 (the name of the variable)
TIMEOUT_S = 10.0


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)[:200]


def _email(data: Mapping[str, Any]) -> Email:
    return Email(
        to=str(data.get("to", "")),
        mail_from=str(data.get("mail_from", "")),
        subject=str(data.get("subject", "")),
        text=str(data.get("text", "")),
        html=str(data.get("html", "")),
        received_at=float(data.get("received_at", 0.0)),
    )


class JobMailbox:
    """``(address, since) -> [Email]`` over HTTP; called from worker threads, one client each
    call (email steps poll a few times a second at most)."""

    def __init__(self, endpoint: str, job_id: str, token: str) -> None:
        self.url = f"{endpoint.rstrip('/')}/api/v1/agent/jobs/{job_id}/mail"
        self._headers = {"Authorization": f"Token {token}"}
        self.last_error = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobMailbox | None:
        values = [env.get(name, "") for name in (ENDPOINT_ENV, JOB_ID_ENV, TOKEN_ENV)]
        return cls(*values) if all(values) else None

    def __call__(self, address: str, since: float) -> list[Email]:
        params = {"address": address, "since": f"{since:.3f}"}
        try:
            response = httpx.get(self.url, params=params, headers=self._headers, timeout=TIMEOUT_S)
        except httpx.TransportError as exc:
            self.last_error = f"the server did not answer: {type(exc).__name__}"
            return []
        if response.status_code == 429 or response.status_code >= 500:
            self.last_error = f"the server answered {response.status_code}"
            return []
        self.last_error = ""
        if response.status_code >= 400:
            raise StepFailure(f"the server refused to read this mail: {_detail(response)}")
        body = response.json()
        if not isinstance(body, list):
            raise StepFailure("the server's mail answer is not a list")
        return [_email(item) for item in body if isinstance(item, dict)]
