"""Selenium IDE ``.side`` projects (format versions 1.x to 3.0, IDE 3 and 4 command names).

``target`` is authoritative; the recorder's alternate ``targets`` become fallback selectors.
``${var}`` becomes ``{{var}}`` (``{{var|json}}`` inside scripts, where Selenium IDE substitutes
values). Control flow (if/elseIf/else, while, do/repeatIf, times, forEach ... end) becomes nested
steps; ``run`` becomes a module import of the test written next to it. Dialog commands recorded
after the click that opened the dialog (WebDriver style) are moved before it, because our runner
answers a dialog the moment it opens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.browser.importers.common import Collector, ImportResult, slug
from bastion.browser.spec.model import BrowserTest
from bastion.browser.spec.parse import SpecError, load_test

_VAR = re.compile(r"\$\{([A-Za-z_][\w.\-]*)\}")
KEYS = {
    "KEY_ENTER": "Enter",
    "KEY_TAB": "Tab",
    "KEY_ESC": "Escape",
    "KEY_ESCAPE": "Escape",
    "KEY_BACKSPACE": "Backspace",
    "KEY_BKSP": "Backspace",
    "KEY_DELETE": "Delete",
    "KEY_DEL": "Delete",
    "KEY_SPACE": "Space",
    "KEY_UP": "ArrowUp",
    "KEY_DOWN": "ArrowDown",
    "KEY_LEFT": "ArrowLeft",
    "KEY_RIGHT": "ArrowRight",
    "KEY_HOME": "Home",
    "KEY_END": "End",
    "KEY_PAGE_UP": "PageUp",
    "KEY_PAGE_DOWN": "PageDown",
    "KEY_F1": "F1",
    "KEY_F5": "F5",
    "KEY_F12": "F12",
}
_KEY_TOKEN = re.compile(r"\$\{(KEY_[A-Z0-9_]+)\}")
# Legacy IDE 3 names -> the IDE 4 command they mean.
ALIASES = {
    "chooseOkOnNextConfirmation": "acceptConfirmation",
    "webdriverChooseOkOnVisibleConfirmation": "acceptConfirmation",
    "chooseCancelOnNextConfirmation": "dismissConfirmation",
    "webdriverChooseCancelOnVisibleConfirmation": "dismissConfirmation",
    "answerOnNextPrompt": "answerPrompt",
    "webdriverAnswerOnVisiblePrompt": "answerPrompt",
    "chooseCancelOnNextPrompt": "dismissPrompt",
    "webdriverChooseCancelOnVisiblePrompt": "dismissPrompt",
    "storeXpathCount": "storeElementCount",
    "clickAt": "click",
    "doubleClickAt": "doubleClick",
    "mouseDownAt": "mouseDown",
    "mouseUpAt": "mouseUp",
}
# "Next" style legacy commands come before the click; the others after it.
_ANSWER_BEFORE = {
    "chooseOkOnNextConfirmation",
    "chooseCancelOnNextConfirmation",
    "answerOnNextPrompt",
    "chooseCancelOnNextPrompt",
}
_DIALOG = {
    "acceptAlert",
    "acceptConfirmation",
    "answerPrompt",
    "dismissConfirmation",
    "dismissPrompt",
}
_STATE_ASSERTS = {
    "ElementPresent": "present",
    "ElementNotPresent": "absent",
    "Checked": "checked",
    "NotChecked": "unchecked",
    "Editable": "editable",
    "NotEditable": "readonly",
}
_WAITS = {
    "waitForElementPresent": "present",
    "waitForElementNotPresent": "absent",
    "waitForElementVisible": "visible",
    "waitForElementNotVisible": "hidden",
    "waitForElementEditable": "editable",
    "waitForElementNotEditable": "readonly",
}
_OPENERS = {"if", "while", "times", "forEach", "do"}


class _Unhandled:
    """Returned by a group of commands that does not know the command."""


UNHANDLED = _Unhandled()


@dataclass(frozen=True)
class _Cmd:
    position: int
    original: str
    name: str
    target: str
    value: str
    targets: list[str]


def looks_like_side(data: Any) -> bool:
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("tests"), list)
        and ("urls" in data or "version" in data)
        and all(isinstance(t, Mapping) and "commands" in t for t in data["tests"])
    )


def vars_to_ours(text: str, *, script: bool = False) -> str:
    return _VAR.sub(
        lambda m: f"{{{{{m.group(1)}|json}}}}" if script else f"{{{{{m.group(1)}}}}}", text
    )


def locator(raw: str) -> str | None:
    """A Selenium IDE locator as one of our selector strings (None if it has no equivalent)."""
    text = vars_to_ours(raw.strip())
    strategy, sep, rest = text.partition("=")
    if text.startswith(("//", "(//")):
        return f"xpath={text}"
    if not sep:
        return f"css={text}" if text else None
    quoted = rest.replace("\\", "\\\\").replace('"', '\\"')
    if strategy == "id":
        return f'css=[id="{quoted}"]'
    if strategy == "name":
        return f'css=[name="{quoted}"]'
    if strategy == "css":
        return f"css={rest}"
    if strategy == "xpath":
        return f"xpath={rest}"
    if strategy in ("linkText", "link"):
        return f'role=link[name="{rest}"]'
    if strategy == "partialLinkText":
        return f"role=link[name={rest}]"
    if strategy in ("index", "relative", "handle", "label", "value"):
        return None
    return f"css={text}"


def _targets(command: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    main = locator(str(command.get("target", "")))
    if main:
        found.append(main)
    for alternate in command.get("targets") or []:
        raw = alternate[0] if isinstance(alternate, list) and alternate else alternate
        if isinstance(raw, str):
            converted = locator(raw)
            if converted and converted not in found:
                found.append(converted)
    return found


@dataclass
class _Frame:
    """An open control-flow block while commands are folded into nested steps."""

    command: str
    step: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    # For if blocks: (condition, steps) for the if and each elseIf, then the else steps.
    branches: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    else_steps: list[dict[str, Any]] | None = None

    @property
    def current(self) -> list[dict[str, Any]]:
        if self.command != "if":
            return self.steps
        return self.else_steps if self.else_steps is not None else self.branches[-1][1]

    def finish(self) -> dict[str, Any]:
        if self.command != "if":
            self.step["steps"] = self.steps
            return self.step
        tail: list[dict[str, Any]] = self.else_steps or []
        for condition, steps in reversed(self.branches):
            block: dict[str, Any] = {"action": "if", "script": condition, "steps": steps}
            if tail:
                block["else_steps"] = tail
            tail = [block]
        return tail[0]


class _TestConverter:
    def __init__(self, name: str, names: dict[str, str], out: Collector) -> None:
        self.name = name
        self.names = names
        self.out = out
        self.root: list[dict[str, Any]] = []
        self.stack: list[_Frame] = []
        self.window_names: set[str] = set()

    @property
    def current(self) -> list[dict[str, Any]]:
        return self.stack[-1].current if self.stack else self.root

    def add(self, step: dict[str, Any]) -> None:
        self.current.append(step)

    def convert(self, commands: list[Any]) -> list[dict[str, Any]]:
        for position, command in enumerate(commands, start=1):
            if not isinstance(command, Mapping):
                self.out.miss(self.name, position, "?", "not a command object")
                continue
            name = str(command.get("command", "")).strip()
            if not name or name.startswith("//"):
                continue  # a comment line in the IDE
            try:
                self.command(position, name, command)
            except (ValueError, KeyError) as exc:
                self.out.miss(self.name, position, name, f"cannot convert: {exc}")
        for frame in reversed(self.stack):
            self.out.miss(self.name, len(commands), frame.command, "block is never closed with end")
        while self.stack:
            self._close()
        return self.root

    def command(self, position: int, original: str, command: Mapping[str, Any]) -> None:
        name = ALIASES.get(original, original)
        target = str(command.get("target", "") or "")
        value = str(command.get("value", "") or "")
        soft = name.startswith("verify")
        base = "assert" + name[len("verify") :] if soft else name
        extra: dict[str, Any] = {"soft": True} if soft else {}
        if command.get("comment"):
            extra["name"] = str(command["comment"])[:120]
        if command.get("skip"):
            extra["disabled"] = True
        if command.get("opensWindow"):
            extra["opens_tab"] = True
            if command.get("windowHandleName"):
                self.window_names.add(str(command["windowHandleName"]))
        if self._control(position, name, target, value):
            return
        step = self._simple(position, original, base, target, value, command)
        if step is None:
            return
        step.update(extra)
        if self.out.checked(step, self.name, position, original) is None:
            return
        if name in _DIALOG and original not in _ANSWER_BEFORE and self.current:
            # Answer the dialog before the step that opens it.
            self.current.insert(len(self.current) - 1, step)
            return
        self.add(step)

    def _control(self, position: int, name: str, target: str, value: str) -> bool:
        condition = vars_to_ours(target, script=True)
        if name == "if":
            self.stack.append(_Frame("if", {}, branches=[(condition, [])]))
        elif name == "while":
            self.stack.append(_Frame("while", {"action": "while", "script": condition}))
        elif name == "do":
            self.stack.append(
                _Frame("do", {"action": "while", "script": "true", "at_least_once": True})
            )
        elif name == "times":
            self.stack.append(
                _Frame("times", {"action": "repeat", "times": int(vars_to_ours(target) or "0")})
            )
        elif name == "forEach":
            script = f"{{{{{target}}}}}"
            self.stack.append(
                _Frame("forEach", {"action": "for_each", "script": script, "variable": value})
            )
        elif name in ("elseIf", "else"):
            frame = self.stack[-1] if self.stack else None
            if frame is None or frame.command != "if":
                self.out.miss(self.name, position, name, "outside an if block")
            elif frame.else_steps is not None:
                self.out.miss(self.name, position, name, "after else")
            elif name == "else":
                frame.else_steps = []
            else:
                frame.branches.append((condition, []))
        elif name == "repeatIf":
            if not self.stack or self.stack[-1].command != "do":
                self.out.miss(self.name, position, name, "without a matching do")
                return True
            frame = self.stack.pop()
            frame.step["script"] = condition
            self.add(frame.finish())
        elif name == "end":
            if not self.stack or self.stack[-1].command == "do":
                self.out.miss(self.name, position, name, "without an open block")
                return True
            self._close()
        else:
            return False
        return True

    def _close(self) -> None:
        frame = self.stack.pop()
        self.add(frame.finish())

    def _simple(
        self,
        position: int,
        original: str,
        name: str,
        target: str,
        value: str,
        command: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        cmd = _Cmd(position, original, name, target, value, _targets(command))
        for part in (self._input_step, self._variable_step, self._assertion_step, self._other_step):
            step = part(cmd)
            if step is not UNHANDLED:
                return step  # type: ignore[return-value]
        self.out.miss(self.name, position, original, "no equivalent step")
        return None

    def _element(self, cmd: _Cmd, action: str, **fields: Any) -> dict[str, Any] | None:
        if not cmd.targets:
            self.out.miss(
                self.name, cmd.position, cmd.original, f"unsupported locator {cmd.target!r}"
            )
            return None
        target = cmd.targets if len(cmd.targets) > 1 else cmd.targets[0]
        return {"action": action, "target": target, **fields}

    def _input_step(self, cmd: _Cmd) -> dict[str, Any] | _Unhandled | None:
        """Navigation and input."""
        position, original, name, value = cmd.position, cmd.original, cmd.name, cmd.value
        t = vars_to_ours(cmd.target)
        v = vars_to_ours(cmd.value)
        if name == "open":
            return {"action": "goto", "value": t}
        if name == "click":
            return self._element(cmd, "click")
        if name == "doubleClick":
            return self._element(cmd, "double_click")
        if name == "type":
            return self._element(cmd, "type", value=v)
        if name == "editContent":
            return self._element(cmd, "type", value=v)
        if name == "sendKeys":
            return self._send_keys(
                position, original, value, lambda action, **f: self._element(cmd, action, **f)
            )
        if name in ("select", "addSelection"):
            return self._element(cmd, "select", value=v)
        if name in ("check", "uncheck"):
            return self._element(cmd, name)
        if name == "mouseOver":
            return self._element(cmd, "hover")
        if name == "mouseOut":
            return {"action": "hover", "target": "css=body"}
        if name == "dragAndDropToObject":
            destination = locator(value)
            if destination is None:
                self.out.miss(self.name, position, original, f"unsupported drop locator {value!r}")
                return None
            return self._element(cmd, "drag", to=destination)
        return UNHANDLED

    def _variable_step(self, cmd: _Cmd) -> dict[str, Any] | _Unhandled | None:
        """Scripts and variables."""
        position, original, name, target, value = (
            cmd.position,
            cmd.original,
            cmd.name,
            cmd.target,
            cmd.value,
        )
        t = vars_to_ours(cmd.target)
        if name in ("executeScript", "executeAsyncScript", "runScript"):
            step: dict[str, Any] = {
                "action": "execute_js",
                "script": vars_to_ours(target, script=True),
            }
            if value and name != "runScript":
                step["variable"] = value
            return step
        if name == "store":
            return {"action": "store", "source": "literal", "value": t, "variable": value}
        if name == "storeJson":
            return {"action": "store", "source": "literal", "value": t, "variable": value}
        if name in ("storeText", "storeValue"):
            return self._element(
                cmd, "store", source="text" if name == "storeText" else "value", variable=value
            )
        if name == "storeTitle":
            return {"action": "store", "source": "title", "variable": value or target}
        if name == "storeAttribute":
            at = target.rfind("@")
            if at <= 0:
                self.out.miss(self.name, position, original, "target must be locator@attribute")
                return None
            converted = locator(target[:at])
            if converted is None:
                self.out.miss(self.name, position, original, f"unsupported locator {target[:at]!r}")
                return None
            return {
                "action": "store",
                "source": "attribute",
                "target": converted,
                "attribute": target[at + 1 :],
                "variable": value,
            }
        if name == "storeElementCount":
            return self._element(cmd, "store", source="count", variable=value)
        if name == "storeWindowHandle":
            return {"action": "store", "source": "url", "variable": target or value}
        return UNHANDLED

    def _assertion_step(self, cmd: _Cmd) -> dict[str, Any] | _Unhandled | None:
        """Assertions, dialogs and waits."""
        position, original, name, target, value, targets = (
            cmd.position,
            cmd.original,
            cmd.name,
            cmd.target,
            cmd.value,
            cmd.targets,
        )
        t = vars_to_ours(cmd.target)
        v = vars_to_ours(cmd.value)
        if name == "assert":
            return {"action": "assert_variable", "variable": target, "value": v}
        if name in ("assertText", "assertNotText"):
            return self._element(
                cmd,
                "assert_text",
                value=v,
                match="equals" if name == "assertText" else "not_equals",
            )
        if name == "assertTitle":
            return {"action": "assert_title", "value": t}
        if name in ("assertValue", "assertSelectedValue"):
            return self._element(cmd, "assert_value", value=v)
        if name == "assertNotSelectedValue":
            return self._element(cmd, "assert_value", value=v, match="not_equals")
        if name == "assertSelectedLabel":
            css = [s for s in (targets or []) if s.startswith("css=")]
            if not css:
                self.out.miss(self.name, position, original, "needs a CSS, id or name locator")
                return None
            return {"action": "assert_text", "target": f"{css[0]} option:checked", "value": v}
        if name.startswith("assert") and name[len("assert") :] in _STATE_ASSERTS:
            return self._element(cmd, "assert_element", state=_STATE_ASSERTS[name[len("assert") :]])
        if name in ("assertAlert", "assertConfirmation", "assertPrompt"):
            return {"action": "assert_dialog", "value": t}
        if name in ("acceptAlert", "acceptConfirmation"):
            return {"action": "accept_dialog"}
        if name == "answerPrompt":
            return {"action": "accept_dialog", "value": t or v}
        if name in ("dismissConfirmation", "dismissPrompt"):
            return {"action": "dismiss_dialog"}
        if name in _WAITS:
            wait_step = self._element(cmd, "wait_for_element", state=_WAITS[name])
            if wait_step is not None and value.isdigit() and int(value) > 0:
                wait_step["timeout_ms"] = min(int(value), 300_000)
            return wait_step
        if name == "waitForText":
            return self._element(cmd, "wait_for_text", value=v)
        return UNHANDLED

    def _other_step(self, cmd: _Cmd) -> dict[str, Any] | _Unhandled | None:
        """Pauses, windows, frames, logging and run."""
        position, original, name, target, value, targets = (
            cmd.position,
            cmd.original,
            cmd.name,
            cmd.target,
            cmd.value,
            cmd.targets,
        )
        t = vars_to_ours(cmd.target)
        if name == "pause":
            ms = target or value
            return {"action": "wait", "ms": max(1, min(int(ms or "0"), 120_000))}
        if name == "setWindowSize":
            return {"action": "set_viewport", "value": t}
        if name == "selectFrame":
            return self._select_frame(position, original, target, targets)
        if name == "selectWindow":
            return self._select_window(target)
        if name == "close":
            return {"action": "close_tab"}
        if name == "echo":
            return {"action": "log", "value": t}
        if name in ("setSpeed", "debugger"):
            return {
                "action": "log",
                "value": f"Selenium IDE {original} {target} (no effect here)".strip(),
            }
        if name == "run":
            module = self.names.get(target)
            if module is None:
                self.out.miss(
                    self.name, position, original, f"no test named {target!r} in the project"
                )
                return None
            return {"action": "module", "module": module}
        return UNHANDLED

    def _send_keys(
        self, position: int, original: str, value: str, element: Any
    ) -> dict[str, Any] | None:
        tokens = _KEY_TOKEN.findall(value)
        rest = _KEY_TOKEN.sub("", value)
        if tokens and not rest and len(tokens) == 1:
            key = KEYS.get(tokens[0])
            if key is None:
                self.out.miss(self.name, position, original, f"unknown key {tokens[0]}")
                return None
            return element("press", value=key)
        if not tokens:
            self.out.warnings.append(
                f"{self.name} #{position}: sendKeys of text became type (it replaces the field's value)"
            )
            return element("type", value=vars_to_ours(value))
        self.out.miss(self.name, position, original, "mixes text and keys")
        return None

    def _select_frame(
        self, position: int, original: str, target: str, targets: list[str]
    ) -> dict[str, Any] | None:
        if target.startswith("index="):
            return {"action": "switch_frame", "value": target[len("index=") :]}
        if target.startswith("relative="):
            where = target[len("relative=") :]
            return {"action": "switch_frame", "value": "top" if where == "top" else "parent"}
        if not targets:
            self.out.miss(self.name, position, original, f"unsupported frame locator {target!r}")
            return None
        return {"action": "switch_frame", "target": targets if len(targets) > 1 else targets[0]}

    def _select_window(self, target: str) -> dict[str, Any]:
        if target.startswith("handle="):
            handle = _VAR.fullmatch(target[len("handle=") :])
            name = handle.group(1) if handle else ""
            if name in self.window_names:
                return {"action": "switch_tab", "value": "last"}
            if name:
                return {"action": "switch_tab", "value": f"{{{{{name}}}}}"}
        if target in ("win_ser_local", "null", ""):
            return {"action": "switch_tab", "value": "first"}
        if target.startswith("win_ser_") and target[len("win_ser_") :].isdigit():
            return {"action": "switch_tab", "value": target[len("win_ser_") :]}
        return {"action": "switch_tab", "value": vars_to_ours(target)}


def import_side(data: Mapping[str, Any]) -> ImportResult:
    out = Collector()
    base = str(data.get("url", "") or "")
    tests = [t for t in data.get("tests", []) if isinstance(t, Mapping)]
    names = {str(t.get("name", "")): slug(str(t.get("name", ""))) for t in tests}
    built: list[BrowserTest] = []
    used: set[str] = set()
    for test in tests:
        name = str(test.get("name", "") or "untitled")
        converter = _TestConverter(name, names, out)
        steps = converter.convert(list(test.get("commands", [])))
        # The first open stays a step: a test run by another (``run``) must navigate too.
        document = {"name": _unique(name, used), "steps": steps}
        try:
            built.append(load_test(document))
        except SpecError as exc:
            for problem in exc.problems:
                out.miss(name, 0, problem.where, f"{problem.field}: {problem.message}")
    if base:
        out.warnings.append(f"project base URL {base}: run with --base-url {base}")
    return ImportResult("selenium-ide", tuple(built), tuple(out.unmapped), tuple(out.warnings))


def _unique(name: str, used: set[str]) -> str:
    candidate, counter = name, 2
    while candidate in used:
        candidate, counter = f"{name} ({counter})", counter + 1
    used.add(candidate)
    return candidate
