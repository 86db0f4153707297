"""Mail for the fake-inbox tests and the route matrices: a run's address and messages stored
through the sink's own ``store_message`` (what the SMTP handler calls)."""

from __future__ import annotations

from email.message import EmailMessage

from django.conf import settings

from bastion.browser.mail.sink import store_message
from bastion.browser.models import BrowserRun, MailMessage, MailToken


def run_address(run: BrowserRun, label: str = "run") -> str:
    token = MailToken.objects.filter(run=run).order_by("pk").first()
    assert token is not None, "runs started through start_run have mail tokens"
    return f"{label}-{token.token}@{settings.CONFIG.mail_domain}"


def confirmation_mail(to: str, subject: str = "Confirm your sign-up") -> bytes:
    message = EmailMessage()
    message["From"] = "Shop <shop@lab.test>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Your code is 424242.\nhttp://127.0.0.1:9/confirm?token=t\n")
    message.add_alternative(
        "<p id=x>Your code is <b>424242</b></p><script>parent.document.title='pwned'</script>"
        '<img src="http://127.0.0.1:9/pixel.png">',
        subtype="html",
    )
    message.add_attachment(
        b"Terms: be nice.\n", maintype="text", subtype="plain", filename="terms.txt"
    )
    return message.as_bytes()


def deliver(to: list[str], subject: str = "Confirm your sign-up") -> MailMessage:
    return store_message("shop@lab.test", to, confirmation_mail(to[0], subject))


def inbox_world(run_id: int) -> int:
    """One message with an attachment to the run's address; returns its id."""
    run = BrowserRun.objects.get(pk=run_id)
    return deliver([run_address(run)]).pk
