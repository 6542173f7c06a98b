"""API keys: who is calling, for which tenant, with which role."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from trimtab.config import KeyConfig, Role
from trimtab.errors import GatewayError

MODEL_CALLERS: frozenset[str] = frozenset({"app", "operator", "admin"})
READERS: frozenset[str] = frozenset({"viewer", "operator", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a request. `key_id` identifies the key without revealing it."""

    tenant: str
    role: Role
    key_id: str | None = None
    owner: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


OPEN_ACCESS = Principal(tenant="default", role="admin")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer …` (OpenAI SDK) or `x-api-key` (Anthropic SDK)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or None


class KeyRing:
    """The configured keys, held only as SHA-256 hashes."""

    def __init__(self, keys: list[KeyConfig] | None) -> None:
        self.enabled = keys is not None
        self._by_hash: dict[str, Principal] = {}
        for k in keys or []:
            digest = key_hash(k.key)
            self._by_hash[digest] = Principal(k.tenant, k.role, "key_" + digest[:12], k.owner)

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller, or a 401 that says what was wrong."""
        if not self.enabled:
            return OPEN_ACCESS
        key = presented_key(headers)
        if key is None:
            raise GatewayError(
                401,
                "missing_api_key",
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
            )
        principal = self._by_hash.get(key_hash(key))
        if principal is None:
            raise GatewayError(401, "invalid_api_key", "invalid API key")
        return principal


def require_role(principal: Principal, allowed: frozenset[str], action: str) -> None:
    if principal.role not in allowed:
        raise GatewayError(403, "forbidden", f"a key with role '{principal.role}' may not {action}")
