"""A small client of a running trimtab's routes API (used by `trimtab apply`, `diff`, ...)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from trimtab.client import ApiClient, ClientError


class RoutesClient(ApiClient):
    def __init__(self, url: str, api_key: str | None, *, timeout_s: float = 30.0) -> None:
        super().__init__(url, api_key, timeout_s=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = super()._call(method, path, **kwargs)
        if not isinstance(data, dict):
            raise ClientError(f"{method} {path}: the server did not answer with a JSON object")
        return data

    @staticmethod
    def _route(route: str) -> str:
        return "/api/routes/" + quote(route, safe="")

    def apply(self, text: str, source: str, message: str) -> list[dict[str, Any]]:
        body = {"yaml": text, "source": source, "message": message}
        answer = self._call("POST", "/api/routes/apply", json=body)
        results: list[dict[str, Any]] = answer["routes"]
        return results

    def list_routes(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", "/api/routes")["data"]
        return rows

    def versions(self, route: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", self._route(route) + "/versions")["data"]
        return rows

    def diff(self, route: str, before: str | None, after: str | None) -> dict[str, Any]:
        params = {k: v for k, v in (("from", before), ("to", after)) if v}
        return self._call("GET", self._route(route) + "/diff", params=params)

    def timeline(self, route: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after: int | None = None
        while True:
            params = {"limit": 1000, **({"after": after} if after is not None else {})}
            page = self._call("GET", self._route(route) + "/timeline", params=params)
            events.extend(page["data"])
            after = page.get("next_after")
            if after is None:
                return events

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to a route's sub-resource, e.g. "rollouts" or "rollout/pause"."""
        return self._call("POST", path, json=body)

    def get(self, path: str) -> dict[str, Any]:
        return self._call("GET", path)

    @classmethod
    def route_path(cls, route: str, rest: str, tenant: str | None = None) -> str:
        """A route's sub-resource; `tenant` picks the route of that tenant ("": the shared
        one) instead of the caller's own, else shared (names are per tenant)."""
        path = cls._route(route) + "/" + rest
        return path if tenant is None else f"{path}?tenant={quote(tenant, safe='')}"
