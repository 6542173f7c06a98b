"""API keys: who is calling, for which tenant, with which role."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from trimtab.config import KeyConfig
from trimtab.errors import Forbidden, Unauthenticated, Unavailable
from trimtab.types import OPEN_ACCESS, Principal


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(digest: str) -> str:
    """The public id of a key: derived from its hash, the same for config and store keys."""
    return "key_" + digest[:12]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key from the store as the gateway holds it: who it is, until when, whether revoked."""

    principal: Principal
    expires_at: float | None = None  # Unix seconds
    revoked: bool = False


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer …` (OpenAI SDK) or `x-api-key` (Anthropic SDK)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or None


class KeyRing:
    """Every key the gateway accepts, in memory, held only as SHA-256 hashes.

    Config keys are fixed at start. Store keys (created through the API) are a snapshot that
    `trimtab.auth.cache.KeyCache` replaces every `auth.refresh_s`; this process's own
    creations and revocations apply at once (`put`). A snapshot is trusted for
    `stale_ttl_s` after the refresh that produced it; after that its keys are refused with
    a 503 until the store answers again. Config keys always work.
    """

    def __init__(self, keys: list[KeyConfig] | None, *, stale_ttl_s: float = math.inf) -> None:
        self.enabled = keys is not None
        self.stale_ttl_s = stale_ttl_s
        self._by_hash: dict[str, Principal] = {}
        for k in keys or []:
            digest = key_hash(k.key)
            self._by_hash[digest] = Principal(k.tenant, k.role, key_id_of(digest), k.owner)
        self._config_ids = {p.key_id for p in self._by_hash.values()}
        self._stored: dict[str, StoredKey] = {}
        self._trusted_until = -math.inf  # monotonic deadline of the current snapshot
        self._recent: list[tuple[float, str, StoredKey]] = []  # local changes, monotonic time
        self._process: dict[str, Principal] = {}  # this process's own keys, by hash
        self._process_keys: dict[tuple[str, str], str] = {}

    # -- the request path: memory only ---------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller, or a 401 that says what was wrong."""
        if not self.enabled:
            return OPEN_ACCESS
        key = presented_key(headers)
        if key is None:
            raise Unauthenticated(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                code="missing_api_key",
            )
        return self.by_digest(key_hash(key))

    def by_digest(self, digest: str) -> Principal:
        """The caller whose key has this SHA-256 digest (a console session holds the digest,
        never the key), or the same 401/503 as `authenticate`."""
        principal = self._by_hash.get(digest) or self._process.get(digest)
        if principal is not None:
            return principal
        stored = self._stored.get(digest)
        if stored is None:
            raise Unauthenticated("invalid API key", code="invalid_api_key")
        if stored.revoked:
            raise Unauthenticated("API key revoked", code="revoked_api_key")
        if stored.expires_at is not None and time.time() >= stored.expires_at:
            raise Unauthenticated("API key expired", code="expired_api_key")
        if time.monotonic() > self._trusted_until:
            raise Unavailable(
                "cannot check this API key: the key store has been unreachable for longer "
                f"than auth.stale_ttl_s ({self.stale_ttl_s:g}s); retry later",
                code="key_store_unavailable",
            )
        return stored.principal

    def process_key(self, tenant: str, owner: str) -> str:
        """A key of role `app` in `tenant` that only this process holds, for the calls the
        server makes to its own gateway (online scoring's judges): random, in memory, never
        stored nor listed, gone with the process. The same one for the same arguments."""
        key = self._process_keys.get((tenant, owner))
        if key is None:
            key = "tt_process_" + secrets.token_urlsafe(32)
            digest = key_hash(key)
            self._process[digest] = Principal(tenant, "app", key_id_of(digest), owner)
            self._process_keys[(tenant, owner)] = key
        return key

    # -- maintained by the key cache and the keys API -------------------------------------

    def install(self, snapshot: dict[str, StoredKey], taken_at: float) -> None:
        """Replace the store keys with a snapshot whose query started at `taken_at`
        (monotonic). Local changes made since then may be missing from it: re-apply them."""
        self._recent = [change for change in self._recent if change[0] >= taken_at]
        for _, digest, stored in self._recent:
            snapshot[digest] = stored
        self._stored = snapshot
        self._trusted_until = taken_at + self.stale_ttl_s

    def put(self, digest: str, stored: StoredKey) -> None:
        """A key this process just created or revoked (already committed to the store)."""
        self._recent.append((time.monotonic(), digest, stored))
        self._stored[digest] = stored

    def is_config_key(self, key_id: str) -> bool:
        return key_id in self._config_ids

    def config_keys(self) -> Iterator[Principal]:
        """The keys from the configuration file (their ids, never the keys)."""
        return iter(self._by_hash.values())


def require_role(principal: Principal, allowed: frozenset[str], action: str) -> None:
    if principal.role not in allowed:
        raise Forbidden(f"a key with role '{principal.role}' may not {action}")
