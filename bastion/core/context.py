"""Who is acting and from where: carried from the request to the actions and the audit log."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.core.models import ApiToken, User

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)


def set_client_ip(ip: str | None) -> contextvars.Token[str | None]:
    return _client_ip.set(ip)


def reset_client_ip(token: contextvars.Token[str | None]) -> None:
    _client_ip.reset(token)


def client_ip() -> str | None:
    return _client_ip.get()


@dataclass(frozen=True)
class Actor:
    """The subject of an action: a person, an API token acting for an organization, an agent,
    or the system itself (scheduler, CLI bootstrap)."""

    label: str
    user: User | None = None
    token: ApiToken | None = None
    ip: str | None = None

    @classmethod
    def for_user(cls, user: User, ip: str | None = None) -> Actor:
        return cls(label=f"user:{user.username}", user=user, ip=ip or client_ip())

    @classmethod
    def for_token(cls, token: ApiToken, ip: str | None = None) -> Actor:
        return cls(
            label=f"token:{token.name}",
            token=token,
            ip=ip or client_ip(),
        )

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(label=what, ip=client_ip())
