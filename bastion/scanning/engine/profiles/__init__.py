"""Scan profiles are plugins: each module here defines ``PROFILE``, a :class:`Profile`.

A profile chooses the checks (those that list its name), how pages are explored and the
budgets. A deep profile adds a module with a crawler explorer and active checks; the runner,
the findings and the CLI stay as they are.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from bastion.scanning.engine.context import Explorer
from bastion.scanning.engine.http import HttpLimits


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    explorer: Callable[[], Explorer]
    limits: HttpLimits
    time_budget_s: float = 60.0
    check_time_budget_s: float = 45.0
    check_concurrency: int = 8


def discover_profiles() -> dict[str, Profile]:
    found: dict[str, Profile] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        profile = getattr(module, "PROFILE", None)
        if isinstance(profile, Profile):
            found[profile.name] = profile
    return found


def get_profile(name: str) -> Profile:
    profiles = discover_profiles()
    try:
        return profiles[name]
    except KeyError as exc:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}") from exc
