"""Helpers for tests of keys made through the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from tests.support import ADMIN_KEY, auth

T = TypeVar("T")


def create_key(
    url: str, key: str | None = ADMIN_KEY, expect: int = 201, **fields: Any
) -> dict[str, Any]:
    """POST /api/keys; returns the JSON answer (the created key, or the error)."""
    body = {"tenant": "acme", "role": "app", "owner": "test-suite", **fields}
    response = httpx.post(url + "/api/keys", json=body, headers=auth(key), timeout=10)
    assert response.status_code == expect, response.text
    data: dict[str, Any] = response.json()
    return data


def revoke_key(url: str, key_id: str, key: str | None = ADMIN_KEY) -> httpx.Response:
    return httpx.delete(f"{url}/api/keys/{key_id}", headers=auth(key), timeout=10)


def chat(url: str, key: str | None, model: str = "gpt-mock") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(url + "/v1/chat/completions", json=body, headers=auth(key), timeout=10)


def message_of(response: httpx.Response) -> str:
    message: str = response.json()["error"]["message"]
    return message


def wait_until(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 5.0) -> T:
    """Call `probe` until `done(result)` or the timeout; returns the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)
