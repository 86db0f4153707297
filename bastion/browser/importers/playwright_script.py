"""Export a test as a standalone Playwright (sync API) Python script.

The script needs only ``playwright`` and the system Chromium; it takes the base URL as its first
argument, keeps the test's fallback selectors (first match wins), its variables and control flow,
and exits non-zero when an assertion fails. Modules are inlined when a resolver is given.
"""

from __future__ import annotations

from bastion.browser.runner.session import CHROMIUM, LAUNCH_ARGS
from bastion.browser.spec.model import BrowserTest, Selector, Step
from bastion.browser.spec.modules import MAX_MODULE_DEPTH, ModuleResolver, no_modules
from bastion.browser.spec.selectors import format_selector

_PRELUDE = '''\
import json
import re
import secrets
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

from playwright.sync_api import expect, sync_playwright

BASE_URL = sys.argv[1] if len(sys.argv) > 1 else {base_url!r}
CHROMIUM = {chromium!r}
ARGS = {args!r}
MAIL_DOMAIN = "inbox.bastion.test"
RUN_ID = secrets.token_hex(5)
STARTED = time.time()
V = {variables!r}
HERE = Path(__file__).resolve().parent
LAST_DIALOG = [""]
DIALOG_POLICY = ["dismiss", None]


def var(name):
    if name in V:
        return V[name]
    builtins = {{
        "run.id": RUN_ID,
        "run.email": f"run-{{RUN_ID}}@{{MAIL_DOMAIN}}",
        "timestamp": str(int(STARTED)),
        "timestamp.ms": str(int(STARTED * 1000)),
        "base_url": BASE_URL,
    }}
    if name in builtins:
        return builtins[name]
    if name.startswith("email."):
        return f"{{name[6:]}}-{{RUN_ID}}@{{MAIL_DOMAIN}}"
    if name in ("random.string", "alphanumeric"):
        return secrets.token_hex(5)
    if name == "random.number":
        return str(secrets.randbelow(1_000_000))
    if name == "random.uuid":
        return str(uuid.uuid4())
    raise KeyError(f"unknown variable {{name}}")


def render(text):
    def one(found):
        value = var(found.group(1))
        return json.dumps(value) if found.group(2) else value

    return re.sub(r"\\{{\\{{\\s*([A-Za-z_][\\w.\\-]*)\\s*(?:\\|\\s*(json)\\s*)?\\}}\\}}", one, text)


def js(script):
    script = render(script).strip()
    if script.startswith(("function", "async function")) or re.match(r"^(async\\s*)?(\\([^)]*\\)|[A-Za-z_$][\\w$]*)\\s*=>", script):
        return script
    if re.search(r"\\breturn\\b", script):
        return "async () => {{ " + script + "\\n}}"
    return script


def one(frame, selector):
    kind, _, value = selector.partition("=")
    if kind == "role":
        found = re.match(r"^([a-z]+)\\s*(?:\\[\\s*name\\s*=\\s*([\\"']?)(.*?)\\2\\s*\\])?$", value)
        role, quote, name = found.group(1), found.group(2), found.group(3)
        if name:
            return frame.get_by_role(role, name=name, exact=bool(quote))
        return frame.get_by_role(role)
    if kind == "text":
        exact = len(value) > 1 and value[0] == value[-1] and value[0] in "\\"'"
        return frame.get_by_text(value[1:-1] if exact else value, exact=exact)
    return frame.locator(selector)


def L(frame, *selectors):
    """The first selector that matches something; the first one (auto-waiting) otherwise."""
    for selector in selectors:
        locator = one(frame, render(selector))
        if locator.count():
            return locator.first
    return one(frame, render(selectors[0])).first


def on_dialog(dialog):
    LAST_DIALOG[0] = dialog.message
    if DIALOG_POLICY[0] == "accept":
        dialog.accept(DIALOG_POLICY[1]) if DIALOG_POLICY[1] is not None else dialog.accept()
    else:
        dialog.dismiss()


def matches(actual, expected, mode):
    if mode.startswith("not_"):
        return not matches(actual, expected, mode[4:])
    if mode == "contains":
        return expected in actual
    if mode == "regex":
        return re.search(expected, actual) is not None
    return actual.strip() == expected.strip()


def main():
    failures = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={{"width": {width}, "height": {height}}})
        context.set_default_timeout({timeout})
        expect.set_options(timeout={timeout})
        context.on("page", lambda new_page: new_page.on("dialog", on_dialog))
        page = context.new_page()
        frame = page.main_frame
'''

_EPILOGUE = """\
        browser.close()
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
"""

_STATES = {
    "present": "expect({l}).to_be_attached()",
    "absent": "expect({l}).not_to_be_attached()",
    "visible": "expect({l}).to_be_visible()",
    "hidden": "expect({l}).to_be_hidden()",
    "checked": "expect({l}).to_be_checked()",
    "unchecked": "expect({l}).not_to_be_checked()",
    "enabled": "expect({l}).to_be_enabled()",
    "disabled": "expect({l}).to_be_disabled()",
    "editable": "expect({l}).to_be_editable()",
    "readonly": "expect({l}).not_to_be_editable()",
}


class _Emitter:
    def __init__(self, modules: ModuleResolver) -> None:
        self.lines: list[str] = []
        self.modules = modules
        self.depth = 0
        self.counter = 0

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def locator(self, selectors: tuple[Selector, ...]) -> str:
        return "L(frame, " + ", ".join(repr(format_selector(s)) for s in selectors) + ")"

    def steps(self, steps: tuple[Step, ...], indent: int) -> None:
        if not steps:
            self.emit(indent, "pass")
        for step in steps:
            self.step(step, indent)

    def step(self, step: Step, indent: int) -> None:
        if step.disabled:
            self.emit(indent, f"# disabled: {step.label}")
            return
        self.emit(indent, f"# {step.label}")
        if step.when:
            self.emit(indent, f"if frame.evaluate(js({step.when!r})):")
            indent += 1
        guarded = step.optional or step.soft
        if guarded:
            self.emit(indent, "try:")
            indent += 1
        self.body(step, indent)
        if guarded:
            self.emit(indent - 1, "except Exception as exc:  # noqa: BLE001")
            if step.soft:
                self.emit(
                    indent, f"failures.append({step.label!r} + ': ' + str(exc).splitlines()[0])"
                )
            else:
                self.emit(indent, f"print('optional step failed:', {step.label!r})")

    def body(self, step: Step, indent: int) -> None:
        value = repr(step.value or "")
        loc = self.locator(step.target) if step.target else 'frame.locator("body")'
        timeout = f", timeout={step.timeout_ms}" if step.timeout_ms else ""
        for part in (self._actions, self._checks, self._context, self._blocks):
            if part(step, indent, value, loc, timeout):
                return
        raise ValueError(f"no export for action {step.action!r}")

    def _actions(self, step: Step, indent: int, value: str, loc: str, timeout: str) -> bool:
        """Navigation and interaction."""
        a, e = step.action, self.emit
        if a == "goto":
            e(indent, f"page.goto(urljoin(BASE_URL or page.url, render({value})){timeout})")
            e(indent, "frame = page.main_frame")
        elif a in ("go_back", "go_forward"):
            e(indent, f"page.{a}()")
            e(indent, "frame = page.main_frame")
        elif a == "refresh":
            e(indent, "page.reload()")
            e(indent, "frame = page.main_frame")
        elif a in ("click", "check", "uncheck", "hover"):
            e(indent, f"{loc}.{a}({timeout[2:]})")
        elif a == "double_click":
            e(indent, f"{loc}.dblclick({timeout[2:]})")
        elif a == "type":
            e(indent, f"{loc}.fill(render({value}){timeout})")
        elif a == "clear":
            e(indent, f"{loc}.fill(''{timeout})")
        elif a == "select":
            option = step.value or ""
            kind, sep, rest = option.partition("=")
            if sep and kind in ("label", "value"):
                e(indent, f"{loc}.select_option({kind}=render({rest!r}))")
            elif sep and kind == "index" and rest.isdigit():
                e(indent, f"{loc}.select_option(index={int(rest)})")
            else:
                e(indent, f"{loc}.select_option(render({value}))")
        elif a == "press":
            target = f"{loc}.press" if step.target else "page.keyboard.press"
            e(indent, f"{target}(render({value}))")
        elif a == "upload":
            files = ", ".join(f"str(HERE / {name!r})" for name in step.files)
            e(indent, f"{loc}.set_input_files([{files}])")
        elif a == "drag":
            e(indent, f"{loc}.drag_to({self.locator(step.to)})")
        elif a == "scroll":
            if step.target:
                e(indent, f"{loc}.scroll_into_view_if_needed()")
            else:
                e(
                    indent,
                    f"frame.evaluate('([x, y]) => window.scrollBy(x, y)', [{step.x}, {step.y}])",
                )
        else:
            return False
        return True

    def _checks(self, step: Step, indent: int, value: str, loc: str, timeout: str) -> bool:
        """Waits, assertions, variables and scripts."""
        a, e = step.action, self.emit
        if a == "wait":
            e(indent, f"page.wait_for_timeout({step.ms})")
        elif a in ("wait_for_element", "assert_element"):
            e(indent, _STATES[step.state].format(l=loc))
        elif a in ("wait_for_text", "assert_text"):
            mode = step.match if a == "assert_text" or step.match != "equals" else "contains"
            e(indent, _text_expect(loc, "text", value, mode))
        elif a == "assert_value":
            e(indent, _text_expect(loc, "value", value, step.match))
        elif a in ("assert_url", "wait_for_url"):
            mode = "contains" if a == "wait_for_url" and step.match == "equals" else step.match
            if mode == "equals":
                e(
                    indent,
                    f"expect(page).to_have_url(urljoin(BASE_URL or page.url, render({value})))",
                )
            else:
                e(indent, _text_expect("page", "url", value, mode))
        elif a == "assert_title":
            e(indent, _text_expect("page", "title", value, step.match))
        elif a == "assert_js":
            e(
                indent,
                f"assert frame.evaluate(js({step.script!r})), {'JavaScript was false: ' + step.script!r}",
            )
        elif a == "assert_variable":
            e(
                indent,
                f"assert matches(var({step.variable!r}), render({value}), {step.match!r}), {step.variable!r}",
            )
        elif a == "assert_dialog":
            e(
                indent,
                f"assert matches(LAST_DIALOG[0], render({value}), {step.match!r}), LAST_DIALOG[0]",
            )
        elif a == "store":
            e(indent, f"V[{step.variable!r}] = {_store_expr(step, loc, value)}")
        elif a == "execute_js":
            result = f"frame.evaluate(js({step.script!r}))"
            if step.variable:
                e(indent, f"result = {result}")
                e(
                    indent,
                    f"V[{step.variable!r}] = result if isinstance(result, str) else json.dumps(result)",
                )
            else:
                e(indent, result)
        elif a == "screenshot":
            name = (step.value or "screenshot").replace("/", "-")
            target = loc if step.target else "page"
            masks = ", ".join(f"one(frame, {format_selector(s)!r})" for s in step.exclude)
            e(indent, f"{target}.screenshot(path={name + '.png'!r}, mask=[{masks}])")
        else:
            return False
        return True

    def _context(self, step: Step, indent: int, value: str, loc: str, timeout: str) -> bool:
        """Screenshots, frames, tabs, dialogs and the viewport."""
        a, e = step.action, self.emit
        if a == "switch_frame":
            if step.target:
                e(indent, f"frame = {loc}.element_handle().content_frame()")
            elif step.value == "parent":
                e(indent, "frame = frame.parent_frame or page.main_frame")
            elif step.value and step.value.isdigit():
                e(indent, f"frame = frame.child_frames[{int(step.value)}]")
            else:
                e(indent, "frame = page.main_frame")
        elif a == "switch_tab":
            self._switch_tab(step, indent)
        elif a == "close_tab":
            e(indent, "page.close()")
            e(indent, "page = context.pages[-1]")
            e(indent, "frame = page.main_frame")
        elif a == "accept_dialog":
            text = f"render({value})" if step.value is not None else "None"
            e(indent, f"DIALOG_POLICY[:] = ['accept', {text}]")
        elif a == "dismiss_dialog":
            e(indent, "DIALOG_POLICY[:] = ['dismiss', None]")
        elif a == "set_viewport":
            width, _, height = (step.value or "1280x800").lower().partition("x")
            e(indent, f"page.set_viewport_size({{'width': {int(width)}, 'height': {int(height)}}})")
        elif a == "log":
            e(indent, f"print(render({value}))")
        elif a in ("wait_for_email", "assert_email", "store_email"):
            # A standalone script has no mail sink to read: fail loudly, never skip.
            why = f"{a} reads Bastion's mail sink: run this test with Bastion"
            e(indent, f"raise RuntimeError({why!r})")
        elif a == "exit":
            e(indent, "browser.close()")
            e(indent, f"return {0 if (step.value or 'passing') == 'passing' else 1}")
        else:
            return False
        return True

    def _blocks(self, step: Step, indent: int, value: str, loc: str, timeout: str) -> bool:
        """Exit, control flow and modules."""
        a, e = step.action, self.emit
        if a == "if":
            e(indent, f"if frame.evaluate(js({step.script!r})):")
            self.steps(step.steps, indent + 1)
            if step.else_steps:
                e(indent, "else:")
                self.steps(step.else_steps, indent + 1)
        elif a == "while":
            self.counter += 1
            name = f"_i{self.counter}"
            e(indent, f"for {name} in range({step.max_iterations}):")
            if step.at_least_once:
                e(indent + 1, f"if {name} and not frame.evaluate(js({step.script!r})):")
            else:
                e(indent + 1, f"if not frame.evaluate(js({step.script!r})):")
            e(indent + 2, "break")
            self.steps(step.steps, indent + 1)
        elif a == "repeat":
            e(indent, f"for _ in range({step.times}):")
            self.steps(step.steps, indent + 1)
        elif a == "for_each":
            e(indent, f"for item in frame.evaluate(js({step.script!r})):")
            e(
                indent + 1,
                f"V[{step.variable!r}] = item if isinstance(item, str) else json.dumps(item)",
            )
            self.steps(step.steps, indent + 1)
        elif a == "module":
            self._module(step, indent)
        else:
            return False
        return True

    def _switch_tab(self, step: Step, indent: int) -> None:
        wanted = step.value or "last"
        if wanted in ("last", "first"):
            self.emit(indent, f"page = context.pages[{-1 if wanted == 'last' else 0}]")
        elif wanted.isdigit():
            self.emit(indent, f"page = context.pages[{int(wanted)}]")
        else:
            self.emit(
                indent, f"page = next(p for p in context.pages if render({wanted!r}) in p.url)"
            )
        self.emit(indent, "page.bring_to_front()")
        self.emit(indent, "page.wait_for_load_state()")
        self.emit(indent, "frame = page.main_frame")

    def _module(self, step: Step, indent: int) -> None:
        if self.depth >= MAX_MODULE_DEPTH:
            raise ValueError(f"modules nested deeper than {MAX_MODULE_DEPTH}")
        module = self.modules(step.module)
        for name, value in step.params.items():
            self.emit(indent, f"V[{name!r}] = render({value!r})")
        for name, value in module.variables.items():
            self.emit(indent, f"V.setdefault({name!r}, render({value!r}))")
        self.depth += 1
        self.steps(module.steps, indent)
        self.depth -= 1


def _text_expect(subject: str, what: str, value: str, mode: str) -> str:
    method = {
        "text": "to_have_text",
        "value": "to_have_value",
        "url": "to_have_url",
        "title": "to_have_title",
    }[what]
    negate = mode.startswith("not_")
    base = mode[len("not_") :] if negate else mode
    if base == "contains" and what == "text":
        method, expected = "to_contain_text", f"render({value})"
    elif base == "contains":
        expected = f"re.compile(re.escape(render({value})))"
    elif base == "regex":
        expected = f"re.compile(render({value}))"
    else:
        expected = f"render({value})"
    if negate:
        method = "not_" + method
    return f"expect({subject}).{method}({expected})"


def _store_expr(step: Step, loc: str, value: str) -> str:
    source = step.source
    if source == "literal":
        return f"render({value})"
    if source == "js":
        return f"(lambda r: r if isinstance(r, str) else json.dumps(r))(frame.evaluate(js({step.script!r})))"
    if source == "title":
        return "page.title()"
    if source == "url":
        return "page.url"
    if source == "count":
        first = format_selector(step.target[0])
        return f"str(one(frame, render({first!r})).count())"
    if source == "text":
        return f"{loc}.inner_text()"
    if source == "value":
        return f"{loc}.input_value()"
    return f"{loc}.get_attribute({step.attribute!r}) or ''"


def export_playwright(
    test: BrowserTest, base_url: str = "", modules: ModuleResolver = no_modules
) -> str:
    """The test as a Python script; raises ModuleNotFound if an imported module is missing."""
    emitter = _Emitter(modules)
    head = _PRELUDE.format(
        base_url=base_url,
        chromium=CHROMIUM,
        args=list(LAUNCH_ARGS),
        variables=dict(test.variables),
        width=test.viewport_width,
        height=test.viewport_height,
        timeout=test.timeout_ms,
    )
    emitter.emit(2, "page.on('dialog', on_dialog)")
    if test.start_url:
        emitter.emit(2, f"page.goto(urljoin(BASE_URL, render({test.start_url!r})))")
    emitter.steps(test.steps, 2)
    doc = f'"""{test.name}: a browser test exported from Bastion as a Playwright script.\n\nRun: python {{this file}} [BASE_URL]\n"""\n\n'
    return (
        doc.replace("{this file}", "script.py") + head + "\n".join(emitter.lines) + "\n" + _EPILOGUE
    )
