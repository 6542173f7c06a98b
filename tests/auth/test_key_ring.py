"""The in-memory key table: config keys, store snapshots, local changes, expiry, staleness."""

from __future__ import annotations

import time

import pytest

from trimtab.auth.keyring import KeyRing, StoredKey, key_hash, key_id_of
from trimtab.config import KeyConfig
from trimtab.errors import DomainError, GatewayError, gateway_error
from trimtab.types import OPEN_ACCESS, Principal

CONFIG_KEY = "tt-config-admin-1"
STORE_KEY = "tt-store-app-key-1"


def headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def stored(key: str, **kw: object) -> tuple[str, StoredKey]:
    digest = key_hash(key)
    principal = Principal("acme", "app", key_id_of(digest), "bot")
    return digest, StoredKey(principal, **kw)  # type: ignore[arg-type]


def refused(ring: KeyRing, key: str) -> GatewayError:
    """The wire error the app answers a refused key with."""
    with pytest.raises(DomainError) as info:
        ring.authenticate(headers(key))
    return gateway_error(info.value)


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(
        [KeyConfig(key=CONFIG_KEY, tenant="acme", role="admin", owner="ops")], stale_ttl_s=60
    )


def test_without_a_keys_list_everyone_is_let_in() -> None:
    assert KeyRing(None).authenticate({}) is OPEN_ACCESS


def test_config_and_store_keys_share_one_id_scheme(ring: KeyRing) -> None:
    digest, entry = stored(STORE_KEY)
    ring.install({digest: entry}, time.monotonic())
    assert ring.authenticate(headers(CONFIG_KEY)).key_id == key_id_of(key_hash(CONFIG_KEY))
    assert ring.authenticate({"x-api-key": STORE_KEY}) == entry.principal
    assert ring.is_config_key(key_id_of(key_hash(CONFIG_KEY)))
    assert not ring.is_config_key(entry.principal.key_id or "")


def test_unknown_revoked_and_expired_keys_say_which(ring: KeyRing) -> None:
    revoked_digest, revoked = stored("tt-revoked-key", revoked=True)
    expired_digest, expired = stored("tt-expired-key", expires_at=time.time() - 1)
    ring.install({revoked_digest: revoked, expired_digest: expired}, time.monotonic())
    err = refused(ring, "tt-nobody-at-all")
    assert (err.status, err.code) == (401, "invalid_api_key")
    assert refused(ring, "tt-revoked-key").message == "API key revoked"
    err = refused(ring, "tt-expired-key")
    assert (err.status, err.code, err.message) == (401, "expired_api_key", "API key expired")
    with pytest.raises(DomainError) as info:
        ring.authenticate({})
    assert info.value.code == "missing_api_key"


def test_expiry_is_checked_at_lookup_time(ring: KeyRing) -> None:
    digest, entry = stored(STORE_KEY, expires_at=time.time() + 0.3)
    ring.install({digest: entry}, time.monotonic())
    assert ring.authenticate(headers(STORE_KEY)) == entry.principal
    time.sleep(0.35)
    assert refused(ring, STORE_KEY).message == "API key expired"


def test_a_stale_snapshot_refuses_store_keys_but_never_config_keys(ring: KeyRing) -> None:
    digest, entry = stored(STORE_KEY)
    ring.install({digest: entry}, time.monotonic() - 59)
    assert ring.authenticate(headers(STORE_KEY)) == entry.principal
    ring.install({digest: entry}, time.monotonic() - 61)
    err = refused(ring, STORE_KEY)
    assert (err.status, err.code) == (503, "key_store_unavailable")
    assert "auth.stale_ttl_s (60s)" in err.message
    assert ring.authenticate(headers(CONFIG_KEY)).role == "admin"


def test_local_changes_survive_a_snapshot_taken_before_them(ring: KeyRing) -> None:
    before = time.monotonic()
    digest, entry = stored(STORE_KEY)
    ring.put(digest, entry)  # created here, after the refresh query started
    ring.install({}, before)  # that query did not see it
    assert ring.authenticate(headers(STORE_KEY)) == entry.principal
    ring.put(digest, StoredKey(entry.principal, revoked=True))
    ring.install({digest: entry}, before)  # a snapshot from before the revocation
    assert refused(ring, STORE_KEY).message == "API key revoked"


def test_a_newer_snapshot_wins_over_older_local_changes(ring: KeyRing) -> None:
    digest, entry = stored(STORE_KEY)
    ring.put(digest, entry)
    # another process revoked it; a snapshot taken after our change shows that
    ring.install({digest: StoredKey(entry.principal, revoked=True)}, time.monotonic())
    assert refused(ring, STORE_KEY).message == "API key revoked"


def test_a_process_key_works_only_in_its_process_and_is_never_listed(ring: KeyRing) -> None:
    key = ring.process_key("acme", "trimtab:online-scoring")
    assert ring.process_key("acme", "trimtab:online-scoring") == key  # one per tenant
    principal = ring.authenticate(headers(key))
    assert (principal.tenant, principal.role, principal.owner) == (
        "acme", "app", "trimtab:online-scoring"
    )  # fmt: skip
    other = ring.process_key("globex", "trimtab:online-scoring")
    assert other != key and ring.authenticate(headers(other)).tenant == "globex"
    assert [p.owner for p in ring.config_keys()] == ["ops"]
    assert not ring.is_config_key(principal.key_id or "")
    ring.install({}, time.monotonic())  # a store snapshot does not drop it
    assert ring.authenticate(headers(key)) == principal
    # another process (another ring) never accepts it
    assert refused(KeyRing([]), key).code == "invalid_api_key"
