"""POST/GET /api/keys, GET/DELETE /api/keys/{id}: keys created and revoked through the API."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import admin, audit_event, json_response, reader, scoped_tenant
from trimtab.api.endpoints import CREATE_KEY, GET_KEY, LIST_KEYS, REVOKE_KEY
from trimtab.api.errors import change
from trimtab.api.models import OWNER_CHARS, TENANT_CHARS
from trimtab.api.params import bad_param, parse_duration, parse_time
from trimtab.audit.log import AuditEvent, AuditLog
from trimtab.auth.keyring import KeyRing, key_hash, key_id_of
from trimtab.auth.store import ROLES, KeyRow, KeyStore, new_key, stored_key
from trimtab.errors import Conflict, GatewayError, NotFound, Unavailable
from trimtab.types import Principal, new_request_id

log = logging.getLogger(__name__)

_MAX_LIFETIME = timedelta(days=3650)


def parse_expires_in(value: object) -> timedelta:
    """'30d', '12h', '15m' or '45s'."""
    return parse_duration(
        "expires_in", value, longest=_MAX_LIFETIME, examples="30d, 12h, 15m or 45s"
    )


def _text(body: dict[str, Any], name: str, *, required: bool, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_param(name, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad_param(name, "must be a non-empty string")
    if value != value.strip() or not value.isprintable():
        raise bad_param(name, "must not start or end with spaces or hold control characters")
    if len(value) > limit:
        raise bad_param(name, f"must be at most {limit} characters")
    return value


def _expiry(body: dict[str, Any], now: datetime) -> datetime | None:
    at, within = body.get("expires_at"), body.get("expires_in")
    if at is not None and within is not None:
        raise bad_param("expires_at", "give expires_at or expires_in, not both")
    if within is not None:
        return now + parse_expires_in(within)
    if at is None:
        return None
    if not isinstance(at, str):
        raise bad_param("expires_at", "must be an ISO 8601 time")
    when = parse_time("expires_at", at)
    assert when is not None
    if when <= now:
        raise bad_param("expires_at", f"'{at}' is not in the future")
    return when


def config_view(principal: Principal) -> dict[str, Any]:
    """A key from the configuration file, as the API shows it (no hash, no hint)."""
    return {
        "id": principal.key_id,
        "source": "config",
        "tenant": principal.tenant,
        "role": principal.role,
        "owner": principal.owner,
        "name": None,
        "hint": None,
        "status": "active",
        "created_at": None,
        "created_by": None,
        "expires_at": None,
        "revoked_at": None,
        "revoked_by": None,
    }


def acted_by(principal: Principal) -> str | None:
    """Whom a change is attributed to: the acting key's owner, else its id."""
    return principal.owner or principal.key_id


class KeysAPI:
    """Keys in the store: admins create and revoke; readers see their own tenant's."""

    def __init__(self, store: KeyStore, ring: KeyRing, audit: AuditLog) -> None:
        self._store = store
        self._ring = ring
        self._audit = audit

    def routes(self) -> list[Route]:
        return [
            CREATE_KEY.route(self.create),
            LIST_KEYS.route(self.list_keys),
            GET_KEY.route(self.get_key),
            REVOKE_KEY.route(self.revoke),
        ]

    # -- who may -------------------------------------------------------------------------

    def _manager(self, request: Request, action: str) -> Principal:
        principal = admin(self._ring, request, action)
        if not self._ring.enabled:
            raise Conflict(
                "keys are off: the configuration has no 'keys' list, so requests need no key "
                "and a created key would never be checked; add 'keys:' with an admin key first",
                code="keys_disabled",
            )
        return principal

    # -- endpoints -----------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        rid = new_request_id()
        principal = self._manager(request, "create keys")
        body = await CREATE_KEY.json(request)
        now = datetime.now(UTC)
        tenant = _text(body, "tenant", required=True, limit=TENANT_CHARS)
        owner = _text(body, "owner", required=True, limit=OWNER_CHARS)
        name = _text(body, "name", required=False, limit=OWNER_CHARS)
        role = body.get("role")
        if role not in ROLES:
            raise bad_param("role", f"{role!r} is not one of {', '.join(ROLES)}")
        assert tenant is not None and owner is not None and isinstance(role, str)
        expires_at = _expiry(body, now)
        refused: str | None = None  # what the store said the last time it refused the key
        for _ in range(3):
            key = new_key()
            key_id = key_id_of(key_hash(key))
            if self._ring.is_config_key(key_id):
                continue  # 48 bits of id: astronomically rare, but never shadow a config key
            event = audit_event(
                request,
                principal,
                "key.create",
                target=key_id,
                tenant=tenant,
                detail={
                    "role": role,
                    "owner": owner,
                    "name": name,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
                request_id=rid,
            )

            def work(key: str = key, event: AuditEvent = event) -> tuple[str, KeyRow]:
                with self._store.engine.begin() as conn:
                    made = self._store.insert(
                        conn,
                        key,
                        tenant=tenant,
                        role=role,
                        owner=owner,
                        name=name,
                        created_by=acted_by(principal),
                        expires_at=expires_at,
                    )
                    self._audit.write(conn, event)
                return made

            try:
                digest, row = await change(work, conflicts=True)
            except IntegrityError as exc:
                refused = type(exc.orig).__name__
                continue  # the same id already exists: draw another key
            self._ring.put(digest, stored_key(row))
            log.info(
                "key %s created: tenant %s, role %s, owner %s, by %s",
                row.id,
                tenant,
                role,
                owner,
                acted_by(principal),
            )
            return json_response({"key": key, **row.view()}, 201, rid)
        if refused is not None:  # the same refusal three times is no id collision
            raise Unavailable(
                f"the store refused the new key 3 times ({refused}); nothing changed",
                code="store_unavailable",
            )
        raise GatewayError(500, "internal_error", "could not draw a unique key id")

    async def list_keys(self, request: Request) -> Response:
        principal = reader(self._ring, request, "read keys")
        tenant = scoped_tenant(principal, LIST_KEYS.arg(request, "tenant"))
        rows = await run_in_threadpool(self._store.list_keys, tenant)
        configured = [
            config_view(p) for p in self._ring.config_keys() if tenant is None or p.tenant == tenant
        ]
        return json_response({"data": configured + [r.view() for r in rows]})

    async def get_key(self, request: Request) -> Response:
        principal = reader(self._ring, request, "read keys")
        key_id = GET_KEY.arg(request, "key_id")
        for p in self._ring.config_keys():
            if p.key_id == key_id and (principal.is_admin or p.tenant == principal.tenant):
                return json_response(config_view(p))
        row = await run_in_threadpool(self._store.get, key_id)
        if row is None or not (principal.is_admin or row.tenant == principal.tenant):
            raise _no_key(key_id)  # another tenant's key is reported like a missing one
        return json_response(row.view())

    async def revoke(self, request: Request) -> Response:
        rid = new_request_id()
        principal = self._manager(request, "revoke keys")
        key_id = REVOKE_KEY.arg(request, "key_id")
        if self._ring.is_config_key(key_id):
            raise Conflict(
                f"key '{key_id}' comes from the configuration file and cannot be revoked "
                "through the API; remove it from the 'keys' list and restart",
                code="config_key",
            )
        by = acted_by(principal)

        def work() -> tuple[str, KeyRow] | None:
            with self._store.engine.begin() as conn:
                done = self._store.revoke(conn, key_id, by)
                if done is None:
                    return None
                _, row = done
                event = audit_event(
                    request,
                    principal,
                    "key.revoke",
                    target=key_id,
                    tenant=row.tenant,
                    detail={"role": row.role, "owner": row.owner, "name": row.name},
                    request_id=rid,
                )
                self._audit.write(conn, event)
            return done

        done = await change(work)
        if done is None:
            existing = await run_in_threadpool(self._store.get, key_id)
            if existing is None or existing.revoked_at is None:
                raise _no_key(key_id)
            when = existing.revoked_at.isoformat(timespec="seconds")
            raise Conflict(
                f"key '{key_id}' was already revoked at {when} by {existing.revoked_by}",
                code="already_revoked",
            )
        digest, row = done
        self._ring.put(digest, stored_key(row))
        log.info("key %s revoked by %s", key_id, by)
        return json_response(row.view(), 200, rid)


def _no_key(key_id: str) -> NotFound:
    return NotFound(f"no key with id '{key_id}'")
