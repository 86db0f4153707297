"""Reading the fake inbox: an organization's messages (pages and API) and a job's own mail.

An organization sees the mail sent to its runs' addresses (``MailMessage.organization``, set
by the sink from the address's run token). A running ``browser`` job, authorized by its job
token, reads only the mail to the addresses of the tests it carries (``run_ids`` of its
payload) — the agent's email steps go through ``job_mail``.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import io
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpResponse

from bastion.browser.mail.addresses import token_of
from bastion.browser.mail.sink import READ_LIMIT, _parts, to_email
from bastion.browser.models import MailMessage
from bastion.browser.runner.mailbox import Email
from bastion.core.access import Principal, get_scoped_or_404, require_role
from bastion.core.models import Organization, Role
from bastion.jobs.models import Job

MAX_LIST = 200


class AddressRefused(Exception):
    """The job asked for mail to an address that is not one of its run's addresses."""


def messages_for(
    principal: Principal, organization: Organization, address: str = ""
) -> QuerySet[MailMessage]:
    """The organization's messages, newest first; only those to ``address`` when given."""
    require_role(principal, organization, Role.VIEWER)
    rows = MailMessage.objects.filter(
        organization=organization, organization__in=principal.organizations()
    ).defer("raw")
    address = address.strip().lower()
    if address:
        rows = rows.filter(inbox=address)
    return rows.order_by("-received_at", "-pk")


def get_message_for(
    principal: Principal, organization: Organization, message_id: int
) -> MailMessage:
    return get_scoped_or_404(
        principal,
        MailMessage.objects.filter(organization__in=principal.organizations()),
        message_id,
        org_path="organization",
        what="message",
        organization=organization,
    )


@dataclass(frozen=True)
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMessage:
    message: MailMessage
    headers: list[tuple[str, str]]
    text: str
    html: str
    attachments: list[Attachment]


def _parsed(message: MailMessage) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(bytes(message.raw), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def _attachment_parts(parsed: email.message.EmailMessage) -> list[email.message.EmailMessage]:
    return [p for p in parsed.iter_attachments() if isinstance(p, email.message.EmailMessage)]


def _header_value(value: object) -> str:
    try:
        return str(value)
    except (LookupError, ValueError):  # a header the policy cannot decode: show it raw
        return repr(value)


def parse(message: MailMessage) -> ParsedMessage:
    """The message as people read it: headers, text, HTML and the attachments' names."""
    parsed = _parsed(message)
    text, html = _parts(parsed)
    attachments = []
    for index, part in enumerate(_attachment_parts(parsed)):
        payload = part.get_payload(decode=True)
        attachments.append(
            Attachment(
                index=index,
                filename=part.get_filename() or f"attachment-{index + 1}",
                content_type=part.get_content_type(),
                size=len(payload) if isinstance(payload, bytes) else 0,
            )
        )
    headers = [(name, _header_value(value)) for name, value in parsed.items()]
    return ParsedMessage(message, headers, text, html, attachments)


def attachment(message: MailMessage, index: int) -> tuple[Attachment, bytes]:
    """Attachment number ``index`` (from 0) and its decoded content, else 404."""
    parts = _attachment_parts(_parsed(message))
    if not 0 <= index < len(parts):
        raise Http404("No such attachment.")
    part = parts[index]
    payload = part.get_payload(decode=True)
    content = payload if isinstance(payload, bytes) else b""
    meta = Attachment(
        index=index,
        filename=part.get_filename() or f"attachment-{index + 1}",
        content_type=part.get_content_type(),
        size=len(content),
    )
    return meta, content


# The message's own HTML runs nothing and loads nothing from the network; the page frames it
# in an <iframe sandbox> as well, so a message can neither script nor navigate Bastion.
HTML_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)


def html_response(message: MailMessage) -> HttpResponse:
    """The message's HTML part for the sandboxed frame of the message page."""
    parsed = parse(message)
    body = parsed.html or "<p>This message has no HTML part.</p>"
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = HTML_POLICY
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


def attachment_response(message: MailMessage, index: int) -> FileResponse:
    """An attachment as a download (never rendered inline)."""
    meta, content = attachment(message, index)
    response = FileResponse(
        io.BytesIO(content),
        as_attachment=True,
        filename=meta.filename,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


# -- the agent's email steps --------------------------------------------------------------
def job_tokens(job: Job) -> set[str]:
    tokens = job.payload.get("run_ids") if isinstance(job.payload, dict) else None
    return {str(t) for t in tokens if isinstance(t, str)} if isinstance(tokens, list) else set()


def job_mail(job: Job, address: str, since: float) -> list[Email]:
    """The mail to ``address`` received after ``since`` (epoch s), newest first, if
    ``address`` is one of the job's run addresses; else ``AddressRefused``."""
    address = address.strip().lower()
    token = token_of(address, settings.CONFIG.mail_domain)
    if job.kind != "browser" or token is None or token not in job_tokens(job):
        raise AddressRefused(
            f"{address or 'that address'} is not an address of this job's run: a job reads "
            f"mail to its own run addresses only ({{{{run.email}}}}, {{{{email.<label>}}}})"
        )
    cutoff = datetime.fromtimestamp(max(since, 0.0), tz=UTC)
    rows = MailMessage.objects.filter(
        organization_id=job.organization_id, inbox=address, received_at__gte=cutoff
    ).order_by("-received_at", "-pk")[:READ_LIMIT]
    return [to_email(row) for row in rows]
