"""Checks are plugins found by convention: one module per check in this package.

A check module defines one subclass of :class:`Check` with a ``name``, the ``profiles`` it
belongs to, the finding types it may report, and an ``async run(ctx)``. The runner bounds
concurrency, gives each check a time budget and isolates its crashes; a check catches only
:mod:`engine.errors` exceptions, and only where it can still do useful work after one.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from bastion.scanning.engine.context import ScanContext
    from bastion.scanning.engine.http import HttpResponse


class Check:
    name: ClassVar[str]
    profiles: ClassVar[frozenset[str]] = frozenset({"lightning"})
    finding_types: ClassVar[tuple[str, ...]] = ()
    # Whether the check sends probes in the query parameters it finds (``ctx.parameters()``):
    # a retest of its finding then puts the finding's parameter in the URL it explores.
    probes_parameters: ClassVar[bool] = False

    async def run(self, ctx: ScanContext) -> None:
        raise NotImplementedError

    def report(
        self,
        ctx: ScanContext,
        type_id: str,
        *,
        url: str,
        response: HttpResponse | None = None,
        **kwargs: object,
    ) -> None:
        if type_id not in self.finding_types:
            raise ValueError(f"check {self.name} did not declare finding type {type_id}")
        ctx.report(type_id, url=url, check=self.name, response=response, **kwargs)  # type: ignore[arg-type]


def discover_checks() -> dict[str, type[Check]]:
    """Import every module of this package and return its Check subclasses by name."""
    found: dict[str, type[Check]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Check)
                and value is not Check
                and value.__module__ == module.__name__
            ):
                if value.name in found:
                    raise RuntimeError(f"two checks are named {value.name!r}")
                found[value.name] = value
    return dict(sorted(found.items()))


def checks_for_profile(profile: str) -> list[type[Check]]:
    return [c for c in discover_checks().values() if profile in c.profiles]
