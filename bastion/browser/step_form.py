"""What the step editor shows: step kinds in groups, and the fields of a kind with their labels,
widgets and help. Presentation only; ``editor.step_from_form`` parses what comes back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.browser.editor import fields_of
from bastion.browser.spec.model import ACTIONS, ELEMENT_STATES, MATCH_MODES, STORE_SOURCES

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Navigate", ("goto", "go_back", "go_forward", "refresh", "set_viewport")),
    (
        "Interact",
        (
            "click",
            "double_click",
            "type",
            "clear",
            "select",
            "check",
            "uncheck",
            "hover",
            "press",
            "upload",
            "drag",
            "scroll",
        ),
    ),
    ("Wait", ("wait_for_element", "wait_for_text", "wait_for_url", "wait")),
    (
        "Assert",
        (
            "assert_element",
            "assert_text",
            "assert_value",
            "assert_url",
            "assert_title",
            "assert_js",
            "assert_variable",
            "assert_dialog",
        ),
    ),
    ("Variables and scripts", ("store", "execute_js", "log")),
    ("Screenshots", ("screenshot",)),
    (
        "Frames, tabs and dialogs",
        ("switch_frame", "switch_tab", "close_tab", "accept_dialog", "dismiss_dialog"),
    ),
    ("Email", ("wait_for_email", "assert_email", "store_email")),
    ("Flow and modules", ("module", "if", "while", "repeat", "for_each", "exit")),
)

LABELS = {
    "target": "Element",
    "to": "Drop on",
    "exclude": "Leave out (painted over)",
    "value": "Value",
    "match": "Match",
    "state": "State",
    "source": "Read from",
    "variable": "Variable",
    "attribute": "Attribute",
    "script": "JavaScript",
    "files": "Files",
    "ms": "Milliseconds",
    "x": "X (pixels)",
    "y": "Y (pixels)",
    "times": "Times",
    "module": "Module (a test of this project)",
    "params": "Parameters",
    "steps": "Steps (YAML)",
    "else_steps": "Else steps (YAML)",
    "max_iterations": "At most (iterations)",
    "at_least_once": "Run at least once",
}
HELP = {
    "target": "One selector per line, tried in order until one matches: #id, css=…, "
    'xpath=//…, text=Sign in, role=button[name="Save"].',
    "to": "One selector per line (fallbacks), like the element.",
    "exclude": "Selectors of dynamic content (clocks, ads), one per line.",
    "value": "Text; {{variables}} are replaced.",
    "files": "One path per line, relative to the agent's files folder.",
    "params": "One name=value per line, set as variables inside the module; pass a secret "
    "as password={{password}}: it stays masked (****) in results, logs and variables used.",
    "module": "The test to run here; its steps' results are shown under this step.",
    "steps": 'A YAML list of steps, e.g. - click: "#next"; or leave it empty and add them one '
    'by one with "+ step inside" once the block is saved.',
    "else_steps": "A YAML list of steps run when the condition is false.",
    "script": "An expression or function body; {{name|json}} inserts a variable as a string.",
}
CHOICES: dict[str, tuple[str, ...]] = {
    "match": MATCH_MODES,
    "state": ELEMENT_STATES,
    "source": STORE_SOURCES,
}
TEXTAREAS = frozenset({"target", "to", "exclude", "files", "params", "steps", "else_steps"})
CODE = frozenset({"script", "steps", "else_steps"})
NUMBERS = frozenset({"ms", "x", "y", "times", "max_iterations", "timeout_ms"})


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    widget: str  # text, textarea, code, number, select, checkbox
    value: str
    required: bool
    help: str = ""
    choices: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepFormView:
    action: str
    index: str  # the edited step's path (3, 3.1, 3.else.2); "": a new step
    fields: list[FieldView]
    flags: list[FieldView]
    errors: list[str] = field(default_factory=list)
    block: str = ""  # a new step: the list it goes in ("": the top level)

    @property
    def where(self) -> str:
        """Where a new step goes, for the form's heading."""
        if not self.block:
            return ""
        if self.block.endswith(".else"):
            return f"in the else steps of step {self.block.removesuffix('.else')}"
        return f"in step {self.block}"


def kinds() -> list[tuple[str, list[str]]]:
    grouped = {kind for _, members in GROUPS for kind in members}
    groups = [(label, list(members)) for label, members in GROUPS]
    rest = sorted(k for k in ACTIONS if k not in grouped)
    return groups + ([("Other", rest)] if rest else [])


def _widget(name: str) -> str:
    if name in CHOICES:
        return "select"
    if name in NUMBERS:
        return "number"
    if name in CODE:
        return "code"
    if name in TEXTAREAS:
        return "textarea"
    if name == "at_least_once":
        return "checkbox"
    return "text"


def step_form(
    action: str,
    index: str,
    initial: Mapping[str, str],
    errors: Mapping[str, list[str]] | None = None,
    *,
    modules: tuple[str, ...] = (),
    block: str = "",
) -> StepFormView:
    """The form of a step of kind ``action``; ``modules`` are the tests a module step may
    import (a choice list; a stored name that is not one of them stays a choice)."""
    errors = errors or {}
    spec = ACTIONS[action]
    choices = {**CHOICES}
    if modules or initial.get("module"):
        current = initial.get("module", "")
        choices["module"] = modules + ((current,) if current and current not in modules else ())

    def view(name: str, required: bool, **extra: Any) -> FieldView:
        return FieldView(
            name=name,
            label=extra.pop("label", LABELS.get(name, name.replace("_", " ").capitalize())),
            widget=extra.pop("widget", "select" if name in choices else _widget(name)),
            value=initial.get(name, ""),
            required=required,
            help=extra.pop("help", HELP.get(name, "")),
            choices=choices.get(name, ()),
            errors=tuple(errors.get(name, ())),
        )

    fields = [view(name, name in spec.required) for name in fields_of(action)]
    flags = [
        view("name", False, label="Step name", help="Shown in results instead of the kind."),
        view(
            "when",
            False,
            label="Only when (conditional)",
            widget="text",
            help="A JavaScript expression; the step is skipped when it is false.",
        ),
        view("timeout_ms", False, label="Timeout (ms)", help="Default: the test's timeout."),
        view(
            "optional", False, label="Optional: a failure does not fail the test", widget="checkbox"
        ),
        view(
            "soft", False, label="Soft: a failure fails the test, which goes on", widget="checkbox"
        ),
        view("screenshot", False, label="Screenshot after this step", widget="checkbox"),
        view("disabled", False, label="Disabled (skipped)", widget="checkbox"),
    ]
    return StepFormView(action, index, fields, flags, list(errors.get("form", ())), block)


def summary(step: Mapping[str, Any]) -> str:
    """One line for the steps list: the step's own fields, selectors first."""
    parts = []
    for name in ("target", "value", "to", "variable", "script", "module", "ms", "times"):
        value = step.get(name)
        if value in (None, ""):
            continue
        if isinstance(value, list):
            value = f"{value[0]}  (+{len(value) - 1} fallback{'s' if len(value) > 2 else ''})"
        parts.append(f"{LABELS.get(name, name).split(' (')[0].lower()}: {value}")
    return " · ".join(parts)[:300]
