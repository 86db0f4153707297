"""The org-scoped CLI commands against a running server, through the JSON API.

Used when ``BASTION_URL`` and ``BASTION_TOKEN`` (an API token) are both set. A 4xx answer is
printed with the server's ``detail`` (and field errors) and the command exits non-zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class RemoteError(Exception):
    """The server refused the request or could not be reached; ``str()`` says why."""


@dataclass(frozen=True)
class Remote:
    url: str
    token: str

    @classmethod
    def from_env(cls) -> Remote | None:
        url = os.environ.get("BASTION_URL", "").strip().rstrip("/")
        token = os.environ.get("BASTION_TOKEN", "").strip()
        if not url or not token:
            return None
        return cls(url=url, token=token)

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=TIMEOUT,
            follow_redirects=False,
        )

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            with self._client() as client:
                response = client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.url}: {exc}") from exc
        _raise_for_status(response)
        return response.json()

    def create_project(self, org: str, slug: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            "POST", f"/organizations/{quote(org, safe='')}/projects", {"slug": slug, "name": name}
        )
        return result

    def create_token(
        self, org: str, *, name: str, role: str, expires_at: str | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            "POST",
            f"/organizations/{quote(org, safe='')}/tokens",
            {"name": name, "role": role, "expires_at": expires_at},
        )
        return result

    def export_audit(self, org: str, format: str) -> Iterator[bytes]:
        path = f"/organizations/{quote(org, safe='')}/audit/export"
        try:
            with (
                self._client() as client,
                client.stream("GET", path, params={"format": format}) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(response)
                yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.url}: {exc}") from exc


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    message = f"server said {response.status_code}: {detail or response.reason_phrase}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        message += f" ({_describe(errors)})"
    raise RemoteError(message)


def _describe(errors: Any) -> str:
    if isinstance(errors, dict):
        return "; ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()
        )
    if isinstance(errors, list):
        parts = []
        for item in errors:
            if isinstance(item, dict) and "msg" in item:
                where = ".".join(str(p) for p in item.get("loc", [])[-1:])
                parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(errors)
