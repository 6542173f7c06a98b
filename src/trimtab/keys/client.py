"""A small client of a running trimtab's keys API (used by `trimtab keys ...`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from trimtab.client import ApiClient, ClientError


class KeysClient(ApiClient):
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


__all__ = ["ClientError", "KeysClient"]
