"""A small HTTP client of a running trimtab's API, shared by the CLI's commands."""

from __future__ import annotations

from typing import Any, Self

import httpx


class ClientError(Exception):
    """The server refused, or could not be reached; the message says why."""


class ApiClient:
    """Bearer-key JSON calls; errors become ClientError with the server's message."""

    def __init__(self, url: str, api_key: str | None, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Self:
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
