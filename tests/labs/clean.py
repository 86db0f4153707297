"""A clean lab app: hardened headers, cookies, CORS, encoded output, safe redirects, nothing
exposed. A lightning scan of it (over HTTPS, with the lab CA trusted and the plain-HTTP
redirector given) must produce no finding at all: the false-positive guard.

Unknown paths answer 200 with an HTML "not found" page (a soft 404) on purpose.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

from tests.labs.server import LabRequest, LabResponse

JQUERY_NEW = (
    b"/*! jQuery v3.7.1 | (c) OpenJS Foundation and other contributors | jquery.org/license */\n"
)
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self' https://cdn.lab.invalid; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), geolocation=(), microphone=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Server", "lab"),
]
LANDING = """<!doctype html>
<html><head><title>Clean lab</title>
<script src="/static/jquery-3.7.1.min.js"></script>
<script src="https://cdn.lab.invalid/widget.js" integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC" crossorigin="anonymous"></script>
</head><body>
<h1>Shop</h1>
<a href="/search?q=shoes">Search</a>
<a href="/go?next=/account">Account</a>
<a href="/login">Log in</a>
<form action="/search" method="get"><input name="q"><button>Go</button></form>
</body></html>"""


def app(request: LabRequest) -> LabResponse:
    headers = list(SECURITY_HEADERS)
    path = request.path
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        return LabResponse(405, "", None, [*headers, ("Allow", "GET, HEAD, OPTIONS")])
    if request.method == "OPTIONS":
        return LabResponse(204, b"", None, [*headers, ("Allow", "GET, HEAD, OPTIONS")])
    if path == "/":
        headers.append(
            ("Set-Cookie", "__Host-session=1f0e; Path=/; Secure; HttpOnly; SameSite=Lax")
        )
        return LabResponse(200, LANDING, headers=headers)
    if path == "/search":
        q = html.escape(request.query.get("q", ""))
        return LabResponse(
            200,
            f'<html><body><p>Results for {q}</p><input value="{q}"></body></html>',
            headers=headers,
        )
    if path == "/go":
        target = request.query.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        return LabResponse(302, b"", None, [*headers, ("Location", target)])
    if path == "/login":
        form = (
            '<html><body><form method="post" action="/login"><input name="user">'
            '<input type="password" name="password"><button>Log in</button></form></body></html>'
        )
        return LabResponse(200, form, headers=headers)
    if path == "/static/jquery-3.7.1.min.js":
        return LabResponse(200, JQUERY_NEW, "application/javascript", headers)
    if path == "/.well-known/security.txt":
        expires = (datetime.now(UTC) + timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return LabResponse(
            200,
            f"Contact: mailto:security@lab.invalid\nExpires: {expires}\n",
            "text/plain; charset=utf-8",
            headers,
        )
    return LabResponse(
        200, "<html><body><h1>Sorry, nothing here</h1></body></html>", headers=headers
    )


def redirector(https_base: str) -> object:
    """The plain-HTTP side of the clean lab: every request goes to the same path over HTTPS."""

    def redirect(request: LabRequest) -> LabResponse:
        return LabResponse(301, b"", None, [("Location", https_base.rstrip("/") + request.path)])

    return redirect
