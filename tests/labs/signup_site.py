"""A lab app with an email round trip, served by the stdlib on 127.0.0.1: a sign-up form whose
POST sends a confirmation email (a 6-digit code, a link, a small attachment) over SMTP to the
address typed in, and a confirmation page for that link.

``with SignupSite(smtp_port) as site: site.url``. Mail goes to 127.0.0.1:``smtp_port`` (the
SMTP sink in tests).
"""

from __future__ import annotations

import html
import secrets
import smtplib
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SMTP_TIMEOUT_S = 10
MAX_FORM_BYTES = 10_000

FORM = """<!doctype html><html><head><meta charset=utf-8><title>Sign up</title></head><body>
<h1>Create your account</h1>
<form method=post action=/signup>
<label for=email>Email</label> <input id=email name=email type=email>
<button id=submit type=submit>Sign up</button>
</form></body></html>"""


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"</head><body>{body}</body></html>"
    ).encode()


def confirmation(to: str, base_url: str, code: str, token: str) -> EmailMessage:
    link = f"{base_url}/confirm?token={token}"
    message = EmailMessage()
    message["From"] = "Lab Shop <shop@lab.test>"
    message["To"] = to
    message["Subject"] = "Confirm your sign-up"
    message["X-Lab-Run"] = token[:8]
    message.set_content(f"Welcome!\nYour code is {code}.\nConfirm your account: {link}\n")
    message.add_alternative(
        f"<h1>Welcome!</h1><p>Your code is <b id=code>{code}</b>.</p>"
        f'<p><a href="{link}">Confirm your account</a></p>'
        "<script>document.title='scripts must not run here'</script>",
        subtype="html",
    )
    message.add_attachment(
        b"Terms: be nice.\n", maintype="text", subtype="plain", filename="terms.txt"
    )
    return message


class SignupHandler(BaseHTTPRequestHandler):
    server_version = "SignupLab/1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/signup":
            self._send(200, FORM.encode())
        elif url.path == "/confirm":
            token = parse_qs(url.query).get("token", [""])[0]
            who = self.server.accounts.get(token)  # type: ignore[attr-defined]
            if who is None:
                self._send(404, _page("Unknown", "<p id=error>Unknown confirmation link</p>"))
            else:
                body = f"<p id=confirmed>Account confirmed for {html.escape(who)}</p>"
                self._send(200, _page("Confirmed", body))
        else:
            self._send(404, _page("Not found", "<h1>404</h1>"))

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length", "0") or 0), MAX_FORM_BYTES)
        form = parse_qs(self.rfile.read(length).decode())
        address = form.get("email", [""])[0].strip()
        if urlparse(self.path).path != "/signup" or "@" not in address:
            self._send(400, _page("Sign up", "<p id=error>Enter an email address</p>"))
            return
        code, token = f"{secrets.randbelow(900000) + 100000}", secrets.token_hex(8)
        self.server.accounts[token] = address  # type: ignore[attr-defined]
        site = f"http://127.0.0.1:{self.server.server_address[1]}"
        smtp_port = self.server.smtp_port  # type: ignore[attr-defined]
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            smtp.send_message(confirmation(address, site, code, token))
        self._send(
            200,
            _page("Check your inbox", f"<p id=sent>We sent a code to {html.escape(address)}</p>"),
        )


class SignupSite:
    def __init__(self, smtp_port: int) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), SignupHandler)
        self.httpd.daemon_threads = True
        self.httpd.smtp_port = smtp_port  # type: ignore[attr-defined]
        self.httpd.accounts = {}  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    def __enter__(self) -> SignupSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
