"""Selector strings: ``css=#a``, ``xpath=//a``, ``text=Sign in``, ``role=button[name="Go"]``.

A bare string is CSS, unless it starts with ``//`` or ``(//``, which is XPath (as in Ghost
Inspector). ``text="Sign in"`` (quoted) matches the whole text exactly; unquoted matches a part.
"""

from __future__ import annotations

import re

from bastion.browser.spec.model import Selector

_ROLE = re.compile(
    r"^(?P<role>[a-z]+)\s*(?:\[\s*name\s*=\s*(?P<q>[\"']?)(?P<name>.*?)(?P=q)\s*\])?$"
)
# WAI-ARIA roles Playwright's get_by_role accepts (the common ones; an unknown role is a typo).
ROLES = frozenset(
    """alert alertdialog application article banner blockquote button caption cell checkbox code
    columnheader combobox complementary contentinfo definition deletion dialog directory document
    emphasis feed figure form generic grid gridcell group heading img insertion link list listbox
    listitem log main marquee math meter menu menubar menuitem menuitemcheckbox menuitemradio
    navigation none note option paragraph presentation progressbar radio radiogroup region row
    rowgroup rowheader scrollbar search searchbox separator slider spinbutton status strong
    subscript superscript switch tab table tablist tabpanel term textbox time timer toolbar
    tooltip tree treegrid treeitem""".split()
)


class SelectorError(ValueError):
    """A selector string that cannot be understood."""


def parse_selector(raw: str) -> Selector:
    text = raw.strip()
    if not text:
        raise SelectorError("empty selector")
    prefix, sep, rest = text.partition("=")
    if sep and prefix in {"css", "xpath", "text", "role"}:
        rest = rest.strip()
        if not rest:
            raise SelectorError(f"empty {prefix} selector")
        if prefix == "css":
            return Selector("css", rest)
        if prefix == "xpath":
            return Selector("xpath", rest)
        if prefix == "text":
            if len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "\"'":
                return Selector("text", rest[1:-1], exact=True)
            return Selector("text", rest)
        return _parse_role(rest)
    if text.startswith(("//", "(//", "./")):
        return Selector("xpath", text)
    return Selector("css", text)


def _parse_role(rest: str) -> Selector:
    found = _ROLE.match(rest)
    if not found:
        raise SelectorError(f'role selector must look like role=button[name="Save"], got {rest!r}')
    role = found.group("role")
    if role not in ROLES:
        raise SelectorError(f"unknown ARIA role {role!r}")
    name = found.group("name") or ""
    return Selector("role", role, name=name, exact=bool(found.group("q")))


def format_selector(selector: Selector) -> str:
    if selector.kind == "css":
        return f"css={selector.value}"
    if selector.kind == "xpath":
        return f"xpath={selector.value}"
    if selector.kind == "text":
        return f'text="{selector.value}"' if selector.exact else f"text={selector.value}"
    if not selector.name:
        return f"role={selector.value}"
    quote = '"' if selector.exact else ""
    return f"role={selector.value}[name={quote}{selector.name}{quote}]"
