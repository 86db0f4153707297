"""render_pdf: real Chromium prints HTML to an A4 PDF with page numbers, and stays on loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import pytest
from pypdf import PdfReader

from bastion.core.pdf import PdfError, render_pdf
from tests.labs.server import LabRequest, LabResponse, serve

# A 1x1 PNG, embedded as a data: URL and served by the loopback lab.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
A4_POINTS = (595.28, 841.89)  # 210 x 297 mm


class Hits:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def app(self, request: LabRequest) -> LabResponse:
        with self.lock:
            self.paths.append(request.path)
        return LabResponse(body=PIXEL, content_type="image/png")


def _reader(pdf: bytes) -> PdfReader:
    assert pdf.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(pdf))


def test_text_is_extractable_and_pages_are_a4_and_numbered() -> None:
    rows = "".join(f"<p>Finding number {i}</p>" for i in range(120))
    html = f"""<!doctype html><html><head><style>
      @media print {{ .screen-only {{ display: none; }} }}
    </style></head><body><h1>Executive summary</h1>
    <p class="screen-only">SCREEN ONLY TEXT</p>{rows}</body></html>"""

    reader = _reader(render_pdf(html, footer_label="Bastion report"))

    assert len(reader.pages) >= 2
    first = reader.pages[0]
    width, height = (float(v) for v in first.mediabox.upper_right)
    # Chromium rounds the page box to whole CSS pixels (at most 1.5 pt off).
    assert abs(width - A4_POINTS[0]) < 1.5 and abs(height - A4_POINTS[1]) < 1.5
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Executive summary" in text
    assert "Finding number 119" in text
    assert "SCREEN ONLY TEXT" not in text  # print CSS applies
    total = len(reader.pages)
    assert f"Page 1 of {total}" in first.extract_text()
    assert f"Page {total} of {total}" in reader.pages[-1].extract_text()
    assert "Bastion report" in first.extract_text()


def test_images_load_from_data_urls_and_loopback_base_url_only() -> None:
    allowed, other = Hits(), Hits()
    with serve(allowed.app) as base, serve(other.app) as elsewhere:
        data_url = "data:image/png;base64," + base64.b64encode(PIXEL).decode()
        html = f"""<html><head></head><body><p>Evidence pictures</p>
          <img src="{data_url}" width="20" height="20">
          <img src="logo.png" width="20" height="20">
          <img src="{elsewhere}tracker.png" width="20" height="20">
        </body></html>"""
        pdf = render_pdf(html, base_url=base)

    assert "Evidence pictures" in _reader(pdf).pages[0].extract_text()
    assert allowed.paths == ["/logo.png"]  # relative to base_url, on loopback
    assert other.paths == []  # another origin: blocked before any request left the browser


def test_scripts_do_not_run() -> None:
    html = """<html><body><p id="p">static text</p>
      <script>document.getElementById('p').textContent = 'changed by script';</script>
    </body></html>"""
    text = _reader(render_pdf(html)).pages[0].extract_text()
    assert "static text" in text
    assert "changed by script" not in text


@pytest.mark.parametrize(
    "base_url", ["http://192.0.2.10/", "ftp://127.0.0.1/", "http://example.com/", "not a url"]
)
def test_base_url_off_loopback_is_refused(base_url: str) -> None:
    with pytest.raises(PdfError):
        render_pdf("<p>x</p>", base_url=base_url)


def test_works_when_called_from_async_code() -> None:
    async def inside_a_loop() -> bytes:
        return render_pdf("<p>from async</p>")

    pdf = asyncio.run(inside_a_loop())
    assert "from async" in _reader(pdf).pages[0].extract_text()
