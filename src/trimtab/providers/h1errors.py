"""The failures of the HTTP/1.1 client (`providers/h1client.py`): the provider adapter
(`providers/http.py`) turns them into `UpstreamError`s."""

from __future__ import annotations


class ConnectFailed(Exception):
    """No connection could be opened (refused, unresolvable, TLS handshake or certificate)."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(describe(cause))
        self.cause = cause


class Dropped(Exception):
    """The connection closed or failed before the response ended."""


class BadResponse(Exception):
    """The upstream's bytes are not an HTTP/1.1 response (or not in its content-encoding)."""


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
