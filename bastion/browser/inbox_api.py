"""The fake inbox over /api/v1/: an organization's messages (filter by address), one message with
its headers, text, HTML and attachments, and an attachment's content. Mounted inside the
browser router; reads go through ``bastion.browser.mail.inbox``'s scoped helpers."""

from __future__ import annotations

from datetime import datetime

from django.http import FileResponse, HttpRequest
from ninja import Router, Schema

from bastion.browser.mail import inbox
from bastion.browser.models import MailMessage
from bastion.core.access import Principal, get_organization_for

router = Router(tags=["browser"])
BASE = "/organizations/{org}/inbox"


class BrowserInboxMessageOut(Schema):
    id: int
    received_at: datetime
    mail_from: str
    to: str
    recipients: list[str]
    subject: str
    size: int
    run_id: int | None

    @classmethod
    def of(cls, message: MailMessage) -> BrowserInboxMessageOut:
        return cls(
            id=message.pk,
            received_at=message.received_at,
            mail_from=message.mail_from,
            to=message.inbox,
            recipients=[str(r) for r in message.recipients],
            subject=message.subject,
            size=message.size,
            run_id=message.run_id,
        )


class BrowserInboxAttachmentOut(Schema):
    index: int
    filename: str
    content_type: str
    size: int


class BrowserInboxHeaderOut(Schema):
    name: str
    value: str


class BrowserInboxMessageDetailOut(BrowserInboxMessageOut):
    headers: list[BrowserInboxHeaderOut]
    text: str
    html: str
    attachments: list[BrowserInboxAttachmentOut]


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal


@router.get(BASE, response=list[BrowserInboxMessageOut])
def list_messages(
    request: HttpRequest, org: str, address: str = "", limit: int = 50
) -> list[BrowserInboxMessageOut]:
    """The organization's messages, newest first; ``address`` keeps those to one inbox."""
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    limit = max(1, min(limit, inbox.MAX_LIST))
    rows = inbox.messages_for(principal, organization, address[:320])[:limit]
    return [BrowserInboxMessageOut.of(m) for m in rows]


@router.get(BASE + "/{message_id}", response=BrowserInboxMessageDetailOut)
def get_message(request: HttpRequest, org: str, message_id: int) -> BrowserInboxMessageDetailOut:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    parsed = inbox.parse(inbox.get_message_for(principal, organization, message_id))
    return BrowserInboxMessageDetailOut(
        **BrowserInboxMessageOut.of(parsed.message).dict(),
        headers=[BrowserInboxHeaderOut(name=n, value=v) for n, v in parsed.headers],
        text=parsed.text,
        html=parsed.html,
        attachments=[
            BrowserInboxAttachmentOut(
                index=a.index, filename=a.filename, content_type=a.content_type, size=a.size
            )
            for a in parsed.attachments
        ],
    )


@router.get(
    BASE + "/{message_id}/attachments/{index}",
    openapi_extra={"responses": {200: {"content": {"application/octet-stream": {"schema": {}}}}}},
)
def get_attachment(request: HttpRequest, org: str, message_id: int, index: int) -> FileResponse:
    principal = _principal(request)
    organization = get_organization_for(principal, org)
    message = inbox.get_message_for(principal, organization, message_id)
    return inbox.attachment_response(message, index)
