"""Secret variables of a test or an environment: stored encrypted, never shown back.

A secret is set (or replaced) and removed by name; pages and the API list names only. Values
leave the server in one place: a run's job payload carries them encrypted
(``env_encrypted``), decrypted for the agent when it accepts the job, and named in
``secret_env`` so the agent, the runner and the log store mask them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from bastion.browser.models import Environment, StoredTest
from bastion.core import audit, crypto
from bastion.core.access import Principal, require_role
from bastion.core.models import Role

# Lower-case names: they travel as environment variables and must not shadow PATH, HOME...
SECRET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_SECRETS = 50
MAX_SECRET_BYTES = 4096

Holder = StoredTest | Environment


def read(holder: Holder) -> dict[str, str]:
    """The decrypted secrets (server side only: for a run's job)."""
    if not holder.secrets_encrypted:
        return {}
    data = json.loads(crypto.decrypt(holder.secrets_encrypted))
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def names(holder: Holder) -> list[str]:
    try:
        return sorted(read(holder))
    except crypto.DecryptionError:
        return []


def _minimum(holder: Holder) -> str:
    # Environments are shared set-up (admins), as their creation is; tests belong to members.
    return Role.ADMIN if isinstance(holder, Environment) else Role.MEMBER


def _store(
    principal: Principal, holder: Holder, secrets: dict[str, str], change: dict[str, str]
) -> None:
    kind = "environment" if isinstance(holder, Environment) else "test"
    with transaction.atomic():
        holder.secrets_encrypted = crypto.encrypt(json.dumps(secrets)) if secrets else ""
        holder.save(update_fields=["secrets_encrypted"])
        # The audit row names the secret, never its value.
        audit.record(
            principal.actor,
            f"browser.{kind}.secret",
            organization=holder.project.organization,
            target=holder,
            changes=change,
        )


def set_secret(principal: Principal, holder: Holder, name: str, value: str) -> None:
    require_role(principal, holder.project.organization, _minimum(holder))
    name = name.strip()
    errors: dict[str, list[str]] = {}
    if not SECRET_NAME.match(name):
        errors["secret_name"] = [
            "Use a lower-case letter, then lower-case letters, digits or _ (at most 64)."
        ]
    if not value:
        errors["secret_value"] = ["A secret needs a value."]
    elif len(value.encode()) > MAX_SECRET_BYTES:
        errors["secret_value"] = [f"A secret holds at most {MAX_SECRET_BYTES} bytes."]
    secrets = read(holder)
    if name not in secrets and len(secrets) >= MAX_SECRETS:
        errors["secret_name"] = [f"At most {MAX_SECRETS} secrets."]
    if errors:
        raise ValidationError(errors)
    action = "replace" if name in secrets else "set"
    secrets[name] = value
    _store(principal, holder, secrets, {"name": name, "action": action})


def remove_secret(principal: Principal, holder: Holder, name: str) -> None:
    require_role(principal, holder.project.organization, _minimum(holder))
    secrets = read(holder)
    if name not in secrets:
        raise ValidationError({"secret_name": [f"There is no secret {name!r}."]})
    del secrets[name]
    _store(principal, holder, secrets, {"name": name, "action": "remove"})


def sealed_payload(
    tests: list[StoredTest],
    environment: Environment | None,
    modules: Sequence[StoredTest] = (),
) -> dict[str, Any]:
    """The secrets of a job's tests, of the modules they import and of its environment, for
    its payload: encrypted, and named in ``secret_env`` so every log masks them. On a name
    clash the environment's win, then the test's, then a module's (the caller can override
    what a module brings, as it can its parameters)."""
    secrets: dict[str, str] = {}
    for holder in (*modules, *tests):
        secrets.update(read(holder))
    if environment is not None:
        secrets.update(read(environment))
    if not secrets:
        return {}
    return {"env_encrypted": crypto.encrypt(json.dumps(secrets)), "secret_env": sorted(secrets)}
