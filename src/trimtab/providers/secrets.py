"""The credentials trimtab sends an upstream, and their removal from what it says back.

An upstream may repeat the key it was sent (an "incorrect API key provided: sk-…" 401);
trimtab relays upstream error text to the client, the request record and the log, so
every such text goes through `Scrubber` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from trimtab.config import ProviderConfig

REDACTED = "[redacted]"
# shorter values are no credential worth the name, and replacing them would garble
# ordinary words of the message (trimtab's own keys need 8 characters too)
MIN_SECRET_CHARS = 8
_SECRET_NAME = re.compile(r"auth|key|token|secret|password|signature|cookie", re.IGNORECASE)


def provider_secrets(config: ProviderConfig, headers: Mapping[str, str]) -> list[str]:
    """What a provider sends that must never be shown: its api_key, the values of its
    credential-named headers (and an `Authorization` header's credential alone), and any
    password or credential-named query parameter in its base_url."""
    found: set[str] = set()
    if config.api_key:
        found.add(config.api_key)
    for name, value in {**headers, **config.headers}.items():
        if _SECRET_NAME.search(name):
            found.add(value)
            scheme, _, credential = value.partition(" ")
            if credential.strip() and scheme.isalpha():  # "Bearer sk-…", "Basic dXNl…"
                found.add(credential.strip())
    if config.base_url:
        try:
            url = urlsplit(config.base_url)
            password = url.password
        except ValueError:
            password = None
        else:
            found.update(v for k, v in parse_qsl(url.query) if _SECRET_NAME.search(k))
        if password:
            found.add(password)
    return [s for s in found if len(s) >= MIN_SECRET_CHARS]


class Scrubber:
    """Replaces each known secret with `[redacted]` in text and in bytes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a header value is replaced whole before the key inside it
        ordered = sorted(set(secrets), key=lambda s: len(s.encode()), reverse=True)
        self._text = tuple(ordered)
        self._bytes = tuple(s.encode() for s in ordered)
        self.longest = len(self._bytes[0]) if ordered else 0  # bytes

    def __bool__(self) -> bool:
        return bool(self._text)

    def text(self, value: str) -> str:
        for secret in self._text:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def data(self, value: bytes) -> bytes:
        for secret in self._bytes:
            if secret in value:
                value = value.replace(secret, REDACTED.encode())
        return value
