"""What every importer returns: the tests it could build and every command it could not map."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.browser.spec.model import BrowserTest
from bastion.browser.spec.modules import ModuleNotFound, ModuleResolver


@dataclass(frozen=True)
class Unmapped:
    """A command that has no equivalent, named with its test and 1-based position."""

    test: str
    position: int
    command: str
    reason: str

    def __str__(self) -> str:
        return f"{self.test} #{self.position}: {self.command} ({self.reason})"


@dataclass(frozen=True)
class ImportResult:
    """Imported tests; a test's file name is ``slug(name) + ".yaml"`` and modules refer to it."""

    source_format: str
    tests: tuple[BrowserTest, ...]
    unmapped: tuple[Unmapped, ...] = ()
    warnings: tuple[str, ...] = ()

    def modules(self) -> ModuleResolver:
        """Resolve module references between the imported tests, before they are written out."""
        by_name = {slug(test.name): test for test in self.tests}

        def resolve(name: str) -> BrowserTest:
            key = name.removesuffix(".yaml")
            if key not in by_name:
                raise ModuleNotFound(f"module {name!r} is not among the imported tests")
            return by_name[key]

        return resolve


class ImportFormatError(ValueError):
    """The file is neither a Selenium IDE project nor a Ghost Inspector export."""


@dataclass
class Collector:
    """Mutable bookkeeping while one file is converted."""

    unmapped: list[Unmapped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def miss(self, test: str, position: int, command: str, reason: str) -> None:
        self.unmapped.append(Unmapped(test, position, command, reason))

    def checked(
        self, step: dict[str, Any], test: str, position: int, command: str
    ) -> dict[str, Any] | None:
        """The step if it validates on its own; otherwise reported as unmapped (with why)."""
        from bastion.browser.spec.parse import SpecError, load_test

        try:
            load_test({"name": test, "steps": [step]})
        except SpecError as exc:
            reasons = "; ".join(
                f"{p.field}: {p.message}" if p.field else p.message for p in exc.problems
            )
            self.miss(test, position, command, f"invalid after conversion: {reasons}")
            return None
        return step


def slug(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:60] or "test"


def import_file(path: Path) -> ImportResult:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFormatError(f"{path}: not a JSON file: {exc}") from exc
    return import_data(data)


def import_data(data: Any) -> ImportResult:
    from bastion.browser.importers.ghost import import_ghost, looks_like_ghost
    from bastion.browser.importers.side import import_side, looks_like_side

    if looks_like_side(data):
        return import_side(data)
    if looks_like_ghost(data):
        return import_ghost(data)
    raise ImportFormatError(
        "not a Selenium IDE project (.side) or a Ghost Inspector test/suite JSON export"
    )
