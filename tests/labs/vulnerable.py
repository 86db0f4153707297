"""A deliberately vulnerable lab app: every lightning check has something to find here.

Ground truth: ``vulnerable.truth.json`` (the findings a lightning scan over plain HTTP must
produce, no more, no less). Served over HTTPS it also lacks HSTS and loads mixed content.
"""

from __future__ import annotations

import html

from tests.labs.server import LabRequest, LabResponse

JQUERY_OLD = (
    b"/*! jQuery v1.8.3 jquery.com | jquery.org/license */\n(function(e,t){var n=1;})(window);\n"
)

TRACEBACK = """<html><body><h1>Internal Server Error</h1><pre>
Traceback (most recent call last):
  File "/srv/app/views.py", line 42, in report
    total = sum(row.amount for row in rows)
TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'
</pre></body></html>"""

LANDING = """<!doctype html>
<html><head><title>Vulnerable lab</title>
<link rel="canonical" href="http://{host}/">
<script src="/static/jquery-1.8.3.min.js"></script>
<script src="https://cdn.lab.invalid/ajax/libs/lodash.js/4.17.4/lodash.min.js"></script>
</head><body>
<h1>Shop</h1>
<img src="http://127.0.0.1:9/pixel.png" alt="">
<a href="/search?q=shoes&amp;sort=asc">Search</a>
<a href="/go?next=/account">Account</a>
<a href="/login">Log in</a>
<a href="/index.php">Legacy</a>
<a href="/error">Report</a>
<a href="/debug">Debug</a>
<a href="/profile?name=guest">Profile</a>
<a href="/static/">Files</a>
<a href="/logout">Log out</a>
</body></html>"""


def _common(request: LabRequest) -> list[tuple[str, str]]:
    headers = [("Server", "Apache/2.4.41 (Ubuntu)"), ("X-Powered-By", "PHP/7.4.3")]
    origin = request.headers.get("origin")
    if origin:
        headers += [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
        ]
    return headers


# What a lightning scan must never do to this lab, recorded for the tests to check.
METHODS_SEEN: set[str] = set()
FORBIDDEN_HITS: list[str] = []


def app(request: LabRequest) -> LabResponse:
    headers = _common(request)
    path = request.path
    METHODS_SEEN.add(request.method)
    if request.method == "TRACE":
        return LabResponse(200, request.raw_request, "message/http", headers)
    if request.method == "OPTIONS":
        return LabResponse(
            200, b"", None, [*headers, ("Allow", "GET, POST, PUT, DELETE, TRACE, OPTIONS")]
        )
    if path == "/":
        host = request.headers.get("x-forwarded-host", f"127.0.0.1:{request.host_port}")
        headers += [
            ("Set-Cookie", "sessionid=8f14e45fceea167a; Path=/"),
            (
                "Content-Security-Policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' *",
            ),
        ]
        return LabResponse(200, LANDING.format(host=html.escape(host)), headers=headers)
    if path == "/search":
        q = request.query.get("q", "")
        sort = html.escape(request.query.get("sort", ""))
        body = f"<html><body><p>Results for {q}</p><p>Sorted by {sort}</p></body></html>"
        return LabResponse(200, body, headers=headers)
    if path == "/go":
        return LabResponse(302, b"", None, [*headers, ("Location", request.query.get("next", "/"))])
    if path == "/login":
        headers.append(("Set-Cookie", "prefs=dark; Path=/; Secure; HttpOnly"))
        form = (
            '<html><body><form method="post" action="/login">'
            '<input name="user"><input type="password" name="password">'
            '<button type="submit">Log in</button></form></body></html>'
        )
        return LabResponse(200, form, headers=headers)
    if path == "/index.php":
        return LabResponse(200, "<html><body>Legacy page</body></html>", headers=headers)
    if path == "/index.php.bak":
        return LabResponse(
            200, "<?php\n$db_password = 'hunter2';\n", "application/octet-stream", headers
        )
    if path == "/profile":
        # Escapes < and > but not quotes: the attribute can be broken out of.
        name = html.escape(request.query.get("name", ""), quote=False)
        return LabResponse(
            200, f'<html><body><input name="name" value="{name}"></body></html>', headers=headers
        )
    if path == "/debug":
        page = (
            "<html><body><h1>ValueError at /debug</h1><p>You're seeing this error because you "
            "have <code>DEBUG = True</code> in your Django settings file.</p></body></html>"
        )
        return LabResponse(500, page, headers=headers)
    if path == "/error":
        return LabResponse(500, TRACEBACK, headers=headers)
    if path == "/static/":
        listing = (
            "<html><head><title>Directory listing for /static/</title></head><body>"
            "<h1>Directory listing for /static/</h1><ul>"
            '<li><a href="jquery-1.8.3.min.js">jquery-1.8.3.min.js</a></li></ul></body></html>'
        )
        return LabResponse(200, listing, headers=headers)
    if path == "/static/jquery-1.8.3.min.js":
        return LabResponse(200, JQUERY_OLD, "application/javascript", headers)
    if path == "/.git/HEAD":
        return LabResponse(200, "ref: refs/heads/main\n", "text/plain", headers)
    if path == "/.env":
        return LabResponse(200, "DB_PASSWORD=hunter2\nSECRET_KEY=lab\n", "text/plain", headers)
    if path == "/server-status":
        return LabResponse(
            200, "<html><h1>Apache Server Status for 127.0.0.1</h1></html>", headers=headers
        )
    if path == "/.well-known/security.txt":
        return LabResponse(
            200,
            "Contact: mailto:security@lab.invalid\nExpires: 2020-01-01T00:00:00Z\n",
            "text/plain",
            headers,
        )
    if path == "/logout":  # a state change: the lightning profile must never follow it
        FORBIDDEN_HITS.append(f"{request.method} {path}")
        return LabResponse(302, b"", None, [*headers, ("Location", "/")])
    return LabResponse(404, "<html><body>Not found</body></html>", headers=headers)
