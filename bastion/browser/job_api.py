"""What a running ``browser`` job reads with its job token, under /api/v1/agent/jobs/{job_id}/:
the mail sent to its run's addresses (the agent's email steps). Mounted inside the browser router.

The token names one job (any other job id is 404), and ``inbox.job_mail`` refuses any address
that is not one of that job's run addresses (403): an agent never reads another run's mail.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError

from bastion.browser.mail import inbox
from bastion.jobs import dispatch
from bastion.jobs.agent_api import _translated, job_auth

router = Router(tags=["agent"], auth=job_auth)
MAX_ADDRESS = 320


class BrowserJobMailOut(Schema):
    to: str
    mail_from: str
    subject: str
    text: str
    html: str
    received_at: float


@router.get("/jobs/{job_id}/mail", response=list[BrowserJobMailOut])
def job_mail(
    request: HttpRequest, job_id: int, address: str, since: float = 0.0
) -> list[BrowserJobMailOut]:
    """The messages to ``address`` (one of the run's addresses) received after ``since``
    (epoch seconds), newest first, at most 20."""
    with _translated():
        job = dispatch.job_for_token(str(request.auth), job_id)  # type: ignore[attr-defined]
    if job.is_finished:
        raise HttpError(409, f"The job has finished ({job.state}): its email steps are over.")
    if len(address) > MAX_ADDRESS:
        raise HttpError(400, f"address is longer than {MAX_ADDRESS} characters")
    try:
        found = inbox.job_mail(job, address, since)
    except inbox.AddressRefused as exc:
        raise HttpError(403, str(exc)) from exc
    return [
        BrowserJobMailOut(
            to=m.to,
            mail_from=m.mail_from,
            subject=m.subject,
            text=m.text,
            html=m.html,
            received_at=m.received_at,
        )
        for m in found
    ]
