"""Variables: ``{{name}}`` in step values, selectors, URLs and scripts.

Lookup order, first hit wins: values set while running (``store``, module parameters), the test's
own ``variables``, the suite's, the environment's, secrets, then built-ins. ``{{name|json}}``
inserts the value as a JSON string literal, for scripts. Secret values are replaced by ``****``
in everything that leaves the runner (results, errors, logs) through ``mask``.

Built-ins: ``run.id``; ``run.email`` (one unique address at the mail domain per run);
``email.<label>`` (one per label per run); ``timestamp`` (seconds), ``timestamp.ms``, ``now.iso``
and ``date`` (all fixed at run start); ``random.string``, ``random.number`` and ``random.uuid``
(new on every use: ``store`` one to reuse it); ``base_url``.
"""

from __future__ import annotations

import json
import os
import re
import secrets as _secrets
import string
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*(?:\|\s*(json)\s*)?\}\}")
NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")
MASK = "****"
_ALPHABET = string.ascii_lowercase + string.digits
_DEFAULT_MAIL_DOMAIN = "inbox.bastion.test"


class UnknownVariable(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown variable {{{{{self.name}}}}}"


def default_mail_domain() -> str:
    """The configured mail domain; works with or without Django settings (the CLI has none)."""
    from django.conf import settings

    if settings.configured:
        config = getattr(settings, "CONFIG", None)
        if config is not None:
            return str(config.mail_domain)
    return os.environ.get("BASTION_MAIL_DOMAIN", _DEFAULT_MAIL_DOMAIN)


def template_names(text: str) -> list[str]:
    return [found.group(1) for found in TEMPLATE.finditer(text)]


class Variables:
    """The variables of one run. Not thread-safe: one instance per run."""

    def __init__(
        self,
        *,
        test: Mapping[str, str] | None = None,
        suite: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        base_url: str = "",
        mail_domain: str | None = None,
        run_id: str | None = None,
        now: datetime | None = None,
    ) -> None:
        self.run_id = run_id or _secrets.token_hex(5)
        self.mail_domain = mail_domain or default_mail_domain()
        self.started = now or datetime.now(UTC)
        self._runtime: dict[str, str] = {}
        self._layers: list[Mapping[str, str]] = [
            self._runtime,
            dict(test or {}),
            dict(suite or {}),
            dict(environment or {}),
        ]
        self._secrets = dict(secrets or {})
        self._base_url = base_url
        self._used: dict[str, str] = {}

    # -- lookup ---------------------------------------------------------------------------
    def get(self, name: str) -> str:
        for layer in self._layers:
            if name in layer:
                value = layer[name]
                break
        else:
            if name in self._secrets:
                value = self._secrets[name]
            else:
                value = self._builtin(name)
        self._used[name] = value
        return value

    def has(self, name: str) -> bool:
        try:
            self._builtin_or_layers(name)
        except UnknownVariable:
            return False
        return True

    def _builtin_or_layers(self, name: str) -> str:
        for layer in self._layers:
            if name in layer:
                return layer[name]
        if name in self._secrets:
            return self._secrets[name]
        return self._builtin(name)

    def _builtin(self, name: str) -> str:
        if name == "run.id":
            return self.run_id
        if name == "run.email":
            return f"run-{self.run_id}@{self.mail_domain}"
        if name.startswith("email.") and len(name) > len("email."):
            label = re.sub(r"[^a-z0-9\-]", "-", name[len("email.") :].lower())
            return f"{label}-{self.run_id}@{self.mail_domain}"
        if name == "timestamp":
            return str(int(self.started.timestamp()))
        if name == "timestamp.ms":
            return str(int(self.started.timestamp() * 1000))
        if name == "now.iso":
            return self.started.isoformat(timespec="seconds")
        if name == "date":
            return self.started.date().isoformat()
        if name in {"random.string", "alphanumeric"}:
            return "".join(_secrets.choice(_ALPHABET) for _ in range(10))
        if name == "random.number":
            return str(_secrets.randbelow(1_000_000))
        if name == "random.uuid":
            return str(uuid.uuid4())
        if name == "base_url":
            return self._base_url
        raise UnknownVariable(name)

    def set(self, name: str, value: str) -> None:
        self._runtime[name] = value
        self._used[name] = value

    # -- templates ------------------------------------------------------------------------
    def render(self, text: str) -> str:
        """Replace every ``{{name}}``; raise UnknownVariable for a name that is not defined."""

        def replace(found: re.Match[str]) -> str:
            value = self.get(found.group(1))
            return json.dumps(value) if found.group(2) == "json" else value

        return TEMPLATE.sub(replace, text)

    # -- secrets --------------------------------------------------------------------------
    def is_secret(self, name: str) -> bool:
        return name in self._secrets and not any(name in layer for layer in self._layers)

    def mask(self, text: str) -> str:
        """Hide every secret value (and its JSON-quoted form) in text that leaves the runner."""
        for value in sorted(self._secrets.values(), key=len, reverse=True):
            if value:
                text = text.replace(value, MASK)
                quoted = json.dumps(value)[1:-1]
                if quoted != value:
                    text = text.replace(quoted, MASK)
        return text

    def used(self) -> dict[str, str]:
        """The variables this run read or set, secrets masked."""
        return {
            name: MASK if self.is_secret(name) else self.mask(value)
            for name, value in sorted(self._used.items())
        }
