"""HTML to PDF with the system Chromium (Playwright), for reports any app renders.

``render_pdf(html, base_url=...)`` prints one HTML document to an A4 PDF with page numbers in
the footer. The page gets no network but loopback: a request is let through only when it goes
to ``base_url``'s origin, and ``base_url`` must be a loopback URL. Everything else (a tracking
pixel in scan evidence, a web font, a CDN script) is aborted, so rendering a report never
reaches the outside world. Images belong in the HTML as ``data:`` URLs or on ``base_url``.

JavaScript is off: report HTML carries text copied from scanned sites and error events, and
must render as the server wrote it (charts are server-side SVG). Print CSS applies
(``@media print``, ``@page``); backgrounds are printed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html as html_lib
import ipaddress
import logging
import os
from urllib.parse import urlsplit

from playwright.async_api import PdfMargins, Route, async_playwright

log = logging.getLogger(__name__)

CHROMIUM = os.environ.get("BASTION_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
RENDER_TIMEOUT_S = 120.0
PAGE_TIMEOUT_MS = 30_000
MARGIN: PdfMargins = {"top": "16mm", "bottom": "18mm", "left": "14mm", "right": "14mm"}
FOOTER = (
    '<div style="width:100%;font-size:8px;color:#555;padding:0 14mm;'
    'font-family:sans-serif;display:flex;justify-content:space-between">'
    '<span>{label}</span><span>Page <span class="pageNumber"></span> of '
    '<span class="totalPages"></span></span></div>'
)


class PdfError(Exception):
    """The document could not be rendered (bad base_url, browser failure, time-out)."""


def render_pdf(html: str, *, base_url: str | None = None, footer_label: str = "") -> bytes:
    """Render ``html`` to PDF bytes (A4, page numbers in the footer, print CSS)."""
    origin = _loopback_origin(base_url) if base_url else None
    document = _with_base(html, base_url) if base_url else html
    coroutine = _render(document, origin, footer_label)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from async code (an async view, a test's event loop): Playwright needs a loop of
    # its own, so the render runs on a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=RENDER_TIMEOUT_S + 10)


def _loopback_origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or not host:
        raise PdfError(f"base_url must be an http(s) URL, not {base_url!r}")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise PdfError(f"base_url must be on loopback, not {host!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _with_base(html: str, base_url: str) -> str:
    tag = f'<base href="{html_lib.escape(base_url, quote=True)}">'
    lowered = html.lower()
    at = lowered.find("<head>")
    if at >= 0:
        return html[: at + 6] + tag + html[at + 6 :]
    return tag + html


async def _render(html: str, origin: str | None, footer_label: str) -> bytes:
    try:
        return await asyncio.wait_for(_print(html, origin, footer_label), RENDER_TIMEOUT_S)
    except TimeoutError as exc:
        raise PdfError(f"rendering took longer than {RENDER_TIMEOUT_S:.0f} s") from exc


async def _print(html: str, origin: str | None, footer_label: str) -> bytes:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(LAUNCH_ARGS)
        )
        try:
            context = await browser.new_context(java_script_enabled=False)
            blocked: list[str] = []

            async def guard(route: Route) -> None:
                url = route.request.url
                if origin is not None and _same_origin(url, origin):
                    await route.continue_()
                else:
                    blocked.append(url)
                    await route.abort("blockedbyclient")

            await context.route("**/*", guard)
            page = await context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            await page.set_content(html, wait_until="load")
            await page.emulate_media(media="print")
            if blocked:
                log.info("pdf: blocked %d non-loopback request(s)", len(blocked))
            label = html_lib.escape(footer_label)
            return await page.pdf(
                format="A4",
                print_background=True,
                display_header_footer=True,
                header_template="<div></div>",
                footer_template=FOOTER.format(label=label),
                margin=MARGIN,
            )
        finally:
            await browser.close()


def _same_origin(url: str, origin: str) -> bool:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == origin
