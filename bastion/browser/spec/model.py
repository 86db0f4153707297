"""The browser-test format as typed data: selectors, steps and tests.

A test is a start URL and a list of steps. Every step has an ``action`` and the fields that action
uses (see ``ACTIONS``); the parser in ``parse.py`` fills and validates them. Everything here is a
frozen dataclass so a parsed test can be shared between threads and compared by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SelectorKind = Literal["css", "xpath", "text", "role"]
MatchMode = Literal["equals", "contains", "regex", "not_equals", "not_contains"]

MATCH_MODES: tuple[str, ...] = ("equals", "contains", "regex", "not_equals", "not_contains")
# States an element can be asserted or waited for in.
ELEMENT_STATES: tuple[str, ...] = (
    "present",
    "absent",
    "visible",
    "hidden",
    "checked",
    "unchecked",
    "enabled",
    "disabled",
    "editable",
    "readonly",
)
STORE_SOURCES: tuple[str, ...] = (
    "literal",
    "text",
    "value",
    "attribute",
    "js",
    "count",
    "title",
    "url",
)

DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 300_000
DEFAULT_MAX_ITERATIONS = 100
MAX_ITERATIONS = 10_000
MAX_WAIT_MS = 120_000


@dataclass(frozen=True)
class Selector:
    """One way to find an element. ``name`` is the accessible name for ``role`` selectors."""

    kind: SelectorKind
    value: str
    name: str = ""
    exact: bool = False

    def __str__(self) -> str:
        from bastion.browser.spec.selectors import format_selector

        return format_selector(self)


@dataclass(frozen=True)
class Step:
    action: str
    name: str = ""
    # Element to act on: selectors tried in order until one matches.
    target: tuple[Selector, ...] = ()
    value: str | None = None
    match: MatchMode = "equals"
    state: str = "visible"
    source: str = "literal"
    variable: str = ""
    attribute: str = ""
    script: str = ""
    files: tuple[str, ...] = ()
    to: tuple[Selector, ...] = ()
    # Screenshots: elements painted over (dynamic content left out of comparisons).
    exclude: tuple[Selector, ...] = ()
    ms: int = 0
    x: int = 0
    y: int = 0
    times: int = 0
    module: str = ""
    params: dict[str, str] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    else_steps: tuple[Step, ...] = ()
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    at_least_once: bool = False
    # Modifiers valid on every step.
    when: str = ""
    optional: bool = False
    soft: bool = False
    disabled: bool = False
    screenshot: bool = False
    opens_tab: bool = False
    allow_download: bool = False
    timeout_ms: int | None = None

    @property
    def label(self) -> str:
        return f"{self.action} {self.name!r}" if self.name else self.action


@dataclass(frozen=True)
class Visual:
    """Screenshot comparison of a test's final screenshot against its baseline: the share of
    changed pixels tolerated (percent), the per-pixel colour threshold (0..1), and elements
    painted over before the screenshot is taken (left out of the comparison)."""

    tolerance_pct: float = 0.5
    threshold: float = 0.1
    exclude: tuple[Selector, ...] = ()


@dataclass(frozen=True)
class BrowserTest:
    name: str
    start_url: str = ""
    steps: tuple[Step, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    description: str = ""
    viewport_width: int = 1280
    viewport_height: int = 800
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    # A module is only run when imported by another test.
    import_only: bool = False
    visual: Visual = Visual()


@dataclass(frozen=True)
class ActionSpec:
    """Which fields an action needs and which it accepts, plus its shorthand field."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    # ``- click: "#go"`` is shorthand for ``- action: click, target: "#go"``.
    primary: str = ""
    # One of these groups of fields must be present (used by scroll, switch_frame...).
    one_of: tuple[str, ...] = ()


ACTIONS: dict[str, ActionSpec] = {
    "goto": ActionSpec(("value",), (), "value"),
    "click": ActionSpec(("target",), (), "target"),
    "double_click": ActionSpec(("target",), (), "target"),
    "type": ActionSpec(("target", "value"), (), "target"),
    "clear": ActionSpec(("target",), (), "target"),
    "select": ActionSpec(("target", "value"), (), "target"),
    "check": ActionSpec(("target",), (), "target"),
    "uncheck": ActionSpec(("target",), (), "target"),
    "hover": ActionSpec(("target",), (), "target"),
    "press": ActionSpec(("value",), ("target",), "value"),
    "upload": ActionSpec(("target", "files"), (), "target"),
    "drag": ActionSpec(("target", "to"), (), "target"),
    "scroll": ActionSpec((), ("target", "x", "y"), "target"),
    "wait_for_element": ActionSpec(("target",), ("state",), "target"),
    "wait_for_text": ActionSpec(("value",), ("target", "match"), "value"),
    "wait_for_url": ActionSpec(("value",), ("match",), "value"),
    "wait": ActionSpec(("ms",), (), "ms"),
    "assert_element": ActionSpec(("target",), ("state",), "target"),
    "assert_text": ActionSpec(("value",), ("target", "match"), "value"),
    "assert_value": ActionSpec(("target", "value"), ("match",), "target"),
    "assert_url": ActionSpec(("value",), ("match",), "value"),
    "assert_title": ActionSpec(("value",), ("match",), "value"),
    "assert_js": ActionSpec(("script",), (), "script"),
    "assert_variable": ActionSpec(("variable", "value"), ("match",), "variable"),
    "assert_dialog": ActionSpec(("value",), ("match",), "value"),
    "store": ActionSpec(
        ("variable",), ("source", "target", "attribute", "script", "value"), "variable"
    ),
    "execute_js": ActionSpec(("script",), ("variable",), "script"),
    "screenshot": ActionSpec((), ("value", "target", "exclude"), "value"),
    "switch_frame": ActionSpec((), ("target", "value"), "target", ("target", "value")),
    "switch_tab": ActionSpec(("value",), (), "value"),
    "close_tab": ActionSpec((), (), ""),
    "go_back": ActionSpec((), (), ""),
    "go_forward": ActionSpec((), (), ""),
    "refresh": ActionSpec((), (), ""),
    "accept_dialog": ActionSpec((), ("value",), "value"),
    "dismiss_dialog": ActionSpec((), (), ""),
    "set_viewport": ActionSpec(("value",), (), "value"),
    "log": ActionSpec(("value",), (), "value"),
    "exit": ActionSpec((), ("value",), "value"),
    "if": ActionSpec(("script", "steps"), ("else_steps",), "script"),
    "while": ActionSpec(("script", "steps"), ("max_iterations", "at_least_once"), "script"),
    "repeat": ActionSpec(("times", "steps"), (), "times"),
    "for_each": ActionSpec(("script", "variable", "steps"), ("max_iterations",), "script"),
    "module": ActionSpec(("module",), ("params",), "module"),
    # Email (the SMTP sink): wait for a message to an address, check it, extract from it.
    "wait_for_email": ActionSpec(("value",), (), "value"),
    "assert_email": ActionSpec(("value",), ("attribute", "match"), "value"),
    "store_email": ActionSpec(("variable",), ("attribute", "value"), "variable"),
}

# Fields every action accepts.
COMMON_FIELDS: tuple[str, ...] = (
    "action",
    "name",
    "when",
    "optional",
    "soft",
    "disabled",
    "screenshot",
    "opens_tab",
    "allow_download",
    "timeout_ms",
)
BLOCK_ACTIONS = frozenset({"if", "while", "repeat", "for_each"})
