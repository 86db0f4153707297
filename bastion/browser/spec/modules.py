"""Modules: a test imports another test with ``- module: login.yaml`` and parameters.

The runner asks a ``ModuleResolver`` for the imported test by the name written in the step. On
the command line names are files next to the importing test; on the server they will be tests of
the same project. ``check_modules`` finds missing modules and import cycles before a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from bastion.browser.spec.model import BrowserTest, Step
from bastion.browser.spec.parse import Problem, SpecError, load_test_file

MAX_MODULE_DEPTH = 8


class ModuleNotFound(LookupError):
    pass


ModuleResolver = Callable[[str], BrowserTest]


def no_modules(name: str) -> BrowserTest:
    raise ModuleNotFound(f"module {name!r} not found (no modules available)")


class DirectoryModules:
    """Resolve module names as YAML/JSON files relative to a folder, caching what it loads."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, BrowserTest] = {}

    def __call__(self, name: str) -> BrowserTest:
        if name in self._cache:
            return self._cache[name]
        candidates = [self.root / name] + [
            self.root / f"{name}{suffix}" for suffix in (".yaml", ".yml", ".json")
        ]
        for path in candidates:
            resolved = path.resolve()
            if not resolved.is_relative_to(self.root):
                raise ModuleNotFound(f"module {name!r} is outside {self.root}")
            if resolved.is_file():
                test = load_test_file(resolved)
                self._cache[name] = test
                return test
        raise ModuleNotFound(f"module {name!r} not found in {self.root}")


def iter_module_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    for _, step in module_steps_at(steps):
        yield step


def module_steps_at(steps: tuple[Step, ...], prefix: str = "") -> Iterator[tuple[str, Step]]:
    """The module steps with their paths as errors and results number them (``3.else.1``)."""
    for position, step in enumerate(steps, start=1):
        path = f"{prefix}{position}"
        if step.action == "module":
            yield path, step
        yield from module_steps_at(step.steps, f"{path}.")
        yield from module_steps_at(step.else_steps, f"{path}.else.")


def check_modules(test: BrowserTest, resolve: ModuleResolver) -> None:
    """Raise SpecError if an imported module is missing, invalid, cyclic or nested too deep."""
    problems: list[Problem] = []

    def visit(current: BrowserTest, chain: tuple[str, ...]) -> None:
        for path, step in module_steps_at(current.steps):
            where = f"step {path} (module)"
            if len(chain) > 1:
                where = f"module {' > '.join(chain[1:])}: {where}"
            if step.module in chain:
                cycle = " > ".join((*chain, step.module))
                problems.append(Problem(where, "module", f"import cycle: {cycle}"))
                continue
            if len(chain) >= MAX_MODULE_DEPTH:
                problems.append(
                    Problem(where, "module", f"modules nested deeper than {MAX_MODULE_DEPTH}")
                )
                continue
            try:
                module = resolve(step.module)
            except ModuleNotFound as exc:
                problems.append(Problem(where, "module", str(exc)))
                continue
            except SpecError as exc:
                problems.extend(
                    Problem(f"module {step.module!r}: {p.where}", p.field, p.message)
                    for p in exc.problems
                )
                continue
            visit(module, (*chain, step.module))

    visit(test, (test.name,))
    if problems:
        raise SpecError(problems)


def users_of(module_name: str, tests: dict[str, BrowserTest]) -> list[str]:
    """The tests that import a module directly: what to re-run after the module changes."""
    return sorted(
        name
        for name, test in tests.items()
        if any(step.module == module_name for step in iter_module_steps(test.steps))
    )


def affected_by(module_name: str, tests: dict[str, BrowserTest]) -> list[str]:
    """Every test that imports the module directly or through other modules (bounded by the
    number of tests): what a change to the module may break."""
    affected: set[str] = set()
    frontier = [module_name]
    while frontier and len(affected) < len(tests):
        current = frontier.pop()
        for name in users_of(current, tests):
            if name not in affected and name != module_name:
                affected.add(name)
                frontier.append(name)
    return sorted(affected)
