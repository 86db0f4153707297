"""The fake inbox under ``/o/<org>/inbox/``: the mail sent to the organization's run addresses,
one message (its HTML in a sandboxed frame, text, headers, attachments to download)."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import path

from bastion.browser.mail import inbox
from bastion.core.models import Organization
from bastion.web.views._common import org_page, page, principal_of

PER_PAGE = 50


@org_page()
def message_list(request: HttpRequest, organization: Organization) -> HttpResponse:
    address = request.GET.get("address", "").strip()[:320]
    rows = inbox.messages_for(principal_of(request), organization, address).select_related(
        "run__project"
    )
    listing = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "messages_page": listing,
        "address": address,
        "mail_domain": settings.CONFIG.mail_domain,
        "retention_days": settings.CONFIG.mail_retention_days,
    }
    return page(request, "browser/inbox/list.html", context, section="browser")


@org_page()
def message_detail(
    request: HttpRequest, organization: Organization, message_id: int
) -> HttpResponse:
    message = inbox.get_message_for(principal_of(request), organization, message_id)
    context = {"parsed": inbox.parse(message), "message": message}
    return page(request, "browser/inbox/message.html", context, section="browser")


@org_page()
def message_html(request: HttpRequest, organization: Organization, message_id: int) -> HttpResponse:
    """The message's HTML, for the sandboxed frame of the message page (its own strict CSP)."""
    message = inbox.get_message_for(principal_of(request), organization, message_id)
    return inbox.html_response(message)


@org_page()
def message_attachment(
    request: HttpRequest, organization: Organization, message_id: int, part: int
) -> FileResponse:
    message = inbox.get_message_for(principal_of(request), organization, message_id)
    return inbox.attachment_response(message, part)


MESSAGE = "inbox/<int:message_id>/"
patterns = [
    path("inbox/", message_list, name="inbox"),
    path(MESSAGE, message_detail, name="inbox-message"),
    path(MESSAGE + "html/", message_html, name="inbox-message-html"),
    path(MESSAGE + "attachments/<int:part>/", message_attachment, name="inbox-attachment"),
]
