"""Console sessions: an API key exchanged for a signed, HTTP-only cookie.

The cookie holds the key's SHA-256 digest (never the key), a CSRF token and an expiry,
signed with HMAC-SHA256 under a per-install secret. Every request looks the digest up in
the key ring again, so a revoked or expired key ends its sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

COOKIE = "trimtab_session"
SESSION_S = 12 * 3600
_SECRET_BYTES = 32


def load_secret(path: Path) -> bytes:
    """The install's signing secret, created at first use (0600). Several processes of one
    install share the file: whoever creates it first wins, the others read it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        fresh = secrets.token_bytes(_SECRET_BYTES)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            data = path.read_bytes()
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(fresh)
            return fresh
    if len(data) < _SECRET_BYTES:
        raise ValueError(f"the console's secret file {path} holds fewer than 32 bytes")
    return data


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """Whose session (the key's digest; "" when keys are off), its CSRF token, its end."""

    digest: str
    csrf: str
    expires: float


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def new(self, digest: str, now: float | None = None) -> Session:
        start = time.time() if now is None else now
        return Session(digest, secrets.token_urlsafe(24), start + SESSION_S)

    def dump(self, session: Session) -> str:
        payload = _b64(orjson.dumps([session.digest, session.csrf, session.expires]))
        return f"{payload}.{self._mac(payload)}"

    def load(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries, or None when it is missing, forged or over."""
        if not cookie or "." not in cookie:
            return None
        payload, _, mac = cookie.partition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            digest, csrf, expires = orjson.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        if not isinstance(digest, str) or not isinstance(csrf, str):
            return None
        if not isinstance(expires, int | float):
            return None
        if (time.time() if now is None else now) >= expires:
            return None
        return Session(digest, csrf, float(expires))

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(session.csrf, token)
