"""A small client of a running trimtab's keys API (used by `trimtab keys ...`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class ClientError(Exception):
    """The server refused, or could not be reached; the message says why."""


class KeysClient:
    def __init__(self, url: str, api_key: str | None, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> KeysClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach trimtab at {self.url}: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            message = None
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                message = data["error"].get("message")
            text = message or response.text.strip() or response.reason_phrase
            raise ClientError(f"{response.status_code}: {text}")
        if data is None:
            raise ClientError(f"{method} {path}: the server did not answer with JSON")
        return data

    def create(
        self,
        *,
        tenant: str,
        role: str,
        owner: str,
        name: str | None = None,
        expires_in: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"tenant": tenant, "role": role, "owner": owner}
        if name is not None:
            body["name"] = name
        if expires_in is not None:
            body["expires_in"] = expires_in
        created: dict[str, Any] = self._call("POST", "/api/keys", json=body)
        return created

    def list_keys(self, tenant: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": tenant} if tenant else {}
        rows: list[dict[str, Any]] = self._call("GET", "/api/keys", params=params)["data"]
        return rows

    def revoke(self, key_id: str) -> dict[str, Any]:
        revoked: dict[str, Any] = self._call("DELETE", f"/api/keys/{quote(key_id, safe='')}")
        return revoked
