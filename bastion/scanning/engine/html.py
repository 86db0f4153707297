"""Extract what checks need from HTML: links, scripts, sub-resources, forms, meta tags.

The standard library's tolerant tokenizer is enough for this (no DOM is built, malformed
markup never raises); the browser explorer of the deep profile yields the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin

MAX_TAGS = 20_000
RESOURCE_ATTRS = {
    "img": "src",
    "iframe": "src",
    "frame": "src",
    "embed": "src",
    "source": "src",
    "audio": "src",
    "video": "src",
    "object": "data",
}


@dataclass(frozen=True)
class ScriptTag:
    src: str | None
    integrity: str | None
    crossorigin: str | None
    inline: str = ""


@dataclass
class FormInput:
    name: str
    type: str
    value: str = ""


@dataclass
class Form:
    action: str
    method: str
    inputs: list[FormInput] = field(default_factory=list)


@dataclass
class Document:
    base_url: str
    links: list[str] = field(default_factory=list)
    scripts: list[ScriptTag] = field(default_factory=list)
    resources: list[tuple[str, str]] = field(default_factory=list)  # (tag, absolute URL)
    stylesheets: list[str] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)
    meta: list[dict[str, str]] = field(default_factory=list)


def _usable(url: str) -> bool:
    lowered = url.strip().lower()
    return bool(lowered) and not lowered.startswith(
        ("javascript:", "mailto:", "tel:", "data:", "#")
    )


class _Extractor(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = Document(base_url)
        self._base = base_url
        self._form: Form | None = None
        self._script: dict[str, str | None] | None = None
        self._script_text: list[str] = []
        self._count = 0

    def _abs(self, value: str) -> str:
        return urldefrag(urljoin(self._base, value.strip()))[0]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._count += 1
        if self._count > MAX_TAGS:
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and a.get("href"):
            self._base = urljoin(self._base, a["href"])
        elif tag == "a" and _usable(a.get("href", "")):
            self.doc.links.append(self._abs(a["href"]))
        elif tag == "link" and _usable(a.get("href", "")):
            href = self._abs(a["href"])
            if "stylesheet" in a.get("rel", "").lower():
                self.doc.stylesheets.append(href)
        elif tag == "script":
            self._script = {
                "src": self._abs(a["src"]) if _usable(a.get("src", "")) else None,
                "integrity": a.get("integrity") or None,
                "crossorigin": a.get("crossorigin"),
            }
            self._script_text = []
        elif tag in RESOURCE_ATTRS and _usable(a.get(RESOURCE_ATTRS[tag], "")):
            self.doc.resources.append((tag, self._abs(a[RESOURCE_ATTRS[tag]])))
        elif tag == "form":
            self._form = Form(
                action=self._abs(a.get("action") or self.doc.base_url),
                method=(a.get("method") or "get").upper(),
            )
            self.doc.forms.append(self._form)
        elif tag in {"input", "select", "textarea", "button"} and self._form is not None:
            name = a.get("name", "")
            if name:
                kind = a.get("type", "text" if tag != "select" else "select").lower()
                self._form.inputs.append(FormInput(name, kind, a.get("value", "")))
        elif tag == "meta":
            self.doc.meta.append(a)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._script is not None and sum(map(len, self._script_text)) < 200_000:
            self._script_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.doc.scripts.append(
                ScriptTag(
                    src=self._script["src"],
                    integrity=self._script["integrity"],
                    crossorigin=self._script["crossorigin"],
                    inline="".join(self._script_text),
                )
            )
            self._script = None
        elif tag == "form":
            self._form = None


def parse_html(text: str, base_url: str) -> Document:
    parser = _Extractor(base_url)
    try:
        parser.feed(text[:5_000_000])
        parser.close()
    except AssertionError:
        # Python's parser gives up on some malformed declarations ("<![!..." in garbage bytes)
        # with an AssertionError: keep what was read before it.
        pass
    if parser._script is not None:  # unterminated <script>
        parser.handle_endtag("script")
    return parser.doc
