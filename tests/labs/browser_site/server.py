"""A small web site for browser-test tests and the benchmark, served by the stdlib on 127.0.0.1.

Pages: a form, a login, dialogs, frames, tabs and pop-ups, drag and drop, upload, downloads,
console errors and failed requests, a tall page, late content, a slow page, a page that never
answers (bounded: it gives up when the server stops or after two minutes) and a busy-loop page.
Run it alone with ``python -m tests.labs.browser_site.server [PORT]``.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HANG_MAX_S = 120.0


def _page(title: str, body: str, head: str = "") -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:20px} .box{width:120px;height:80px;"
        "border:2px solid #333;margin:8px;display:inline-block}"
        "#tip{display:none} #hover-me:hover + #tip{display:inline}</style>"
        f"{head}</head><body>{body}</body></html>"
    ).encode()


PAGES: dict[str, tuple[str, str]] = {
    "/": (
        "Lab home",
        "<h1>Browser lab</h1><ul>"
        + "".join(
            f"<li><a href='{p}'>{p}</a></li>"
            for p in ("/form", "/login", "/dialogs", "/frames", "/tabs", "/dnd", "/upload")
        )
        + "</ul>",
    ),
    "/form": (
        "Form",
        """<h1>Greeting form</h1>
<label for=name>Name</label> <input id=name name=name>
<select id=color name=color><option value=r>Red</option><option value=g>Green</option>
<option value=b>Blue</option></select>
<label><input type=checkbox id=agree> I agree</label>
<input id=locked value=fixed readonly>
<button id=go type=button onclick="document.getElementById('out').textContent =
 'Hello, ' + document.getElementById('name').value + ' (' + document.getElementById('color').value + ')'
 + (document.getElementById('agree').checked ? ' agreed' : '')">Greet</button>
<button id=twice type=button ondblclick="document.getElementById('out').textContent='double'">Twice</button>
<p id=out></p>
<span id=hover-me class=box>hover me</span><span id=tip>tooltip shown</span>
<input id=keys placeholder=keys onkeydown="if(event.key==='Enter'){document.getElementById('out').textContent='entered ' + this.value}">
<a id=next href="/form/next?x=1">Next page</a>
<div id=late></div>
<script>setTimeout(() => { document.getElementById('late').innerHTML = '<b id=appeared>appeared</b>' }, 400)</script>
""",
    ),
    "/form/next": ("Next", "<h1>Second page</h1><p id=msg>You made it</p><a href='/form'>back</a>"),
    "/login": (
        "Sign in",
        """<h1>Sign in</h1><form method=post action=/login>
<input name=username id=username aria-label=Username>
<input name=password id=password type=password aria-label=Password>
<button type=submit>Sign in</button></form>""",
    ),
    "/dialogs": (
        "Dialogs",
        """<button id=alert onclick="alert('hello from alert'); document.getElementById('result').textContent='alerted'">Alert</button>
<button id=confirm onclick="document.getElementById('result').textContent = confirm('Are you sure?') ? 'confirmed' : 'cancelled'">Confirm</button>
<button id=prompt onclick="document.getElementById('result').textContent = 'name=' + prompt('Your name?')">Prompt</button>
<button id=endless onclick="for (let i = 0; i < 100000; i++) alert('again ' + i)">Endless</button>
<p id=result></p>""",
    ),
    "/frames": (
        "Frames",
        "<h1>Outer</h1><p id=where>outer page</p><iframe id=inner name=inner src='/frames/inner' width=400 height=200></iframe>",
    ),
    "/frames/inner": (
        "Inner",
        "<p id=where>inner frame</p><button id=inner-btn onclick=\"document.getElementById('where').textContent='inner clicked'\">Inner button</button>"
        "<iframe id=deep src='/frames/deep' width=200 height=80></iframe>",
    ),
    "/frames/deep": ("Deep", "<p id=where>deep frame</p>"),
    "/tabs": (
        "Tabs",
        """<a id=newtab href="/tabs/target" target=_blank>Open in new tab</a>
<button id=popup onclick="window.open('/tabs/target?popup=1', 'pop', 'width=300,height=200')">Pop-up</button>""",
    ),
    "/tabs/target": ("Target tab", "<h1 id=tab-title>The new tab</h1>"),
    "/dnd": (
        "Drag and drop",
        """<div id=source class=box draggable=true ondragstart="event.dataTransfer.setData('text/plain','card')">drag me</div>
<div id=zone class=box ondragover="event.preventDefault()"
 ondrop="event.preventDefault(); this.textContent = 'dropped ' + event.dataTransfer.getData('text/plain')">drop here</div>""",
    ),
    "/upload": (
        "Upload",
        """<input type=file id=file multiple onchange="document.getElementById('out').textContent =
 Array.from(this.files).map(f => f.name + ':' + f.size).join(',')"><p id=out></p>""",
    ),
    "/downloads": ("Downloads", "<a id=dl href='/download/report.txt'>Download report</a>"),
    "/errors": (
        "Errors",
        """<p id=ok>page with errors</p>
<script>console.error('lab console error'); fetch('/missing-resource');</script>
<script>setTimeout(() => { throw new Error('lab uncaught error') }, 10)</script>""",
    ),
    "/tall": (
        "Tall",
        "<div style='height:3000px'>top</div><p id=bottom>the bottom</p>"
        "<script>window.addEventListener('scroll', () => { document.title = 'scrolled ' + Math.round(window.scrollY) })</script>",
    ),
    "/busy": (
        "Busy",
        "<button id=spin onclick='const end = Date.now() + 120000; while (Date.now() < end) {}'>Spin</button>",
    ),
    "/list": (
        "List",
        "<ul id=items><li class=item>alpha</li><li class=item>beta</li><li class=item>gamma</li></ul>"
        "<p id=picked></p>",
    ),
}


class LabHandler(BaseHTTPRequestHandler):
    server_version = "BrowserLab/1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path in PAGES:
            title, body = PAGES[url.path]
            self._send(200, _page(title, body))
        elif url.path == "/account":
            jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
            user = jar["user"].value if "user" in jar else ""
            if not user:
                self._send(302, b"", headers={"Location": "/login"})
            else:
                self._send(
                    200,
                    _page(
                        "Account",
                        f"<h1 id=welcome>Welcome, {html.escape(user)}</h1><a href='/logout'>Sign out</a>",
                    ),
                )
        elif url.path == "/slow":
            delay = min(float(query.get("ms", ["1000"])[0]), 10_000) / 1000
            time.sleep(delay)
            self._send(200, _page("Slow", f"<p id=slow>slow page after {int(delay * 1000)} ms</p>"))
        elif url.path == "/hang":
            self.server.server_stop.wait(HANG_MAX_S)  # type: ignore[attr-defined]
        elif url.path.startswith("/download/"):
            name = url.path.rsplit("/", 1)[-1]
            self._send(
                200,
                b"report body\n",
                "text/plain",
                {"Content-Disposition": f'attachment; filename="{name}"'},
            )
        elif url.path == "/visual":
            color = "".join(
                c for c in query.get("color", ["3366cc"])[0] if c in "0123456789abcdef"
            )[:6]
            text = html.escape(query.get("text", ["Visual check"])[0])
            self._send(
                200,
                _page(
                    "Visual",
                    f"<h1 id=headline>{text}</h1><div id=box style='width:200px;height:120px;background:#{color}'></div><p id=clock>{time.time()}</p>",
                ),
            )
        else:
            self._send(404, _page("Not found", "<h1>404</h1>"))

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length", "0") or 0), 100_000)
        form = parse_qs(self.rfile.read(length).decode())
        if urlparse(self.path).path != "/login":
            self._send(404, b"")
            return
        user, password = form.get("username", [""])[0], form.get("password", [""])[0]
        if password == "s3cret-pass" and user:
            self._send(
                303,
                b"",
                headers={"Location": "/account", "Set-Cookie": f"user={user}; Path=/; HttpOnly"},
            )
        else:
            self._send(
                401,
                _page("Sign in", "<p id=error>Invalid credentials</p><a href='/login'>again</a>"),
            )


class LabServer:
    """``with LabServer() as lab: lab.url``: the site on 127.0.0.1 on a free port."""

    def __init__(self, port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), LabHandler)
        self.httpd.daemon_threads = True
        self.httpd.server_stop = threading.Event()  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    def __enter__(self) -> LabServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.server_stop.set()  # type: ignore[attr-defined]
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


if __name__ == "__main__":
    with LabServer(int(sys.argv[1]) if len(sys.argv) > 1 else 0) as lab:
        print(lab.url, flush=True)
        try:
            threading.Event().wait(3600)
        except KeyboardInterrupt:
            pass
