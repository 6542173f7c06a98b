"""/ui/admin/keys (the tenant's keys; admins create, shown once, and revoke) and
/ui/admin/audit (admins), through the key store and audit log the API's handlers use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from trimtab.audit.log import AuditEvent, AuditFilter, BadCursor, view
from trimtab.auth.keyring import key_hash, key_id_of
from trimtab.auth.store import ROLES, KeyRow, new_key, stored_key
from trimtab.errors import Conflict, Invalid, NotFound, Unavailable
from trimtab.web.context import Page

OWNER_CHARS = 256
TENANT_CHARS = 128
LIFETIMES = {"": None, "1d": timedelta(days=1), "30d": timedelta(days=30),
             "90d": timedelta(days=90), "365d": timedelta(days=365)}  # fmt: skip
AUDIT_PAGE = 50


def _config_rows(page: Page, tenant: str | None) -> list[dict[str, object]]:
    return [
        {"id": p.key_id, "source": "config", "tenant": p.tenant, "role": p.role,
         "owner": p.owner, "name": None, "hint": None, "status": "active",
         "created_at": None, "expires_at": None}
        for p in page.deps.keys.config_keys()
        if tenant is None or p.tenant == tenant
    ]  # fmt: skip


async def _listing(page: Page, created: dict[str, object] | None = None) -> Response:
    tenant = page.viewer.tenant(page.param("tenant"))
    rows = await asyncio.to_thread(page.deps.key_store.list_keys, tenant)
    keys = _config_rows(page, tenant) + [r.view() for r in rows]
    return page.render(
        "keys.html.j2", keys=keys, created=created, roles=ROLES, lifetimes=list(LIFETIMES),
        keys_on=page.deps.keys.enabled,
    )  # fmt: skip


async def keys(page: Page) -> Response:
    return await _listing(page)


def _text(page: Page, name: str, limit: int, *, required: bool) -> str | None:
    value = page.field(name, required=required)
    if value is not None and (len(value) > limit or not value.isprintable()):
        raise Invalid(f"'{name}' must be at most {limit} printable characters", param=name)
    return value


def _refuse_when_keys_off(page: Page) -> None:
    if not page.deps.keys.enabled:
        raise Conflict(
            "keys are off: the configuration has no 'keys' list, so requests need no key "
            "and a created key would never be checked; add 'keys:' with an admin key first",
            code="keys_disabled",
        )


async def create_key(page: Page) -> Response:
    page.viewer.require_admin("create keys")
    _refuse_when_keys_off(page)
    tenant = _text(page, "tenant", TENANT_CHARS, required=True)
    owner = _text(page, "owner", OWNER_CHARS, required=True)
    name = _text(page, "name", OWNER_CHARS, required=False)
    role = page.field("role", required=True)
    if role not in ROLES:
        raise Invalid(f"'role' {role!r} is not one of {', '.join(ROLES)}", param="role")
    lifetime = page.field("expires_in") or ""
    if lifetime not in LIFETIMES:
        raise Invalid(f"'expires_in' must be one of {', '.join(LIFETIMES)}", param="expires_in")
    span = LIFETIMES[lifetime]
    expires_at = datetime.now(UTC) + span if span is not None else None
    assert tenant is not None and owner is not None
    by = page.actor()
    p = page.viewer.principal
    store, ring, audit = page.deps.key_store, page.deps.keys, page.deps.audit
    for _ in range(3):
        key = new_key()
        key_id = key_id_of(key_hash(key))
        if ring.is_config_key(key_id):
            continue
        event = by.event(
            "key.create", target=key_id, tenant=tenant,
            detail={"role": role, "owner": owner, "name": name, "via": "console",
                    "expires_at": expires_at.isoformat() if expires_at else None},
        )  # fmt: skip

        def work(key: str = key, event: AuditEvent = event) -> tuple[str, KeyRow]:
            with store.engine.begin() as conn:
                made = store.insert(
                    conn, key, tenant=tenant, role=role, owner=owner, name=name,
                    created_by=p.owner or p.key_id, expires_at=expires_at,
                )  # fmt: skip
                audit.write(conn, event)
            return made

        try:
            digest, row = await asyncio.to_thread(work)
        except IntegrityError:
            continue
        ring.put(digest, stored_key(row))
        return await _listing(page, {"key": key, **row.view()})
    raise Unavailable("could not store a new key after 3 attempts; nothing changed",
                      code="store_unavailable")  # fmt: skip


async def revoke_key(page: Page) -> Response:
    page.viewer.require_admin("revoke keys")
    _refuse_when_keys_off(page)
    key_id = page.request.path_params["key_id"]
    ring, store, audit = page.deps.keys, page.deps.key_store, page.deps.audit
    if ring.is_config_key(key_id):
        raise Conflict(
            f"key '{key_id}' comes from the configuration file and cannot be revoked here; "
            "remove it from the 'keys' list and restart",
            code="config_key",
        )
    if page.form.get("confirm") != "yes":
        raise Invalid("tick the confirmation box to revoke the key", param="confirm")
    p = page.viewer.principal
    by = page.actor()

    def work() -> tuple[str, KeyRow] | None:
        with store.engine.begin() as conn:
            done = store.revoke(conn, key_id, p.owner or p.key_id)
            if done is None:
                return None
            _, row = done
            event = by.event(
                "key.revoke", target=key_id, tenant=row.tenant,
                detail={"role": row.role, "owner": row.owner, "name": row.name, "via": "console"},
            )  # fmt: skip
            audit.write(conn, event)
        return done

    done = await asyncio.to_thread(work)
    if done is None:
        existing = await asyncio.to_thread(store.get, key_id)
        if existing is None or existing.revoked_at is None:
            raise NotFound(f"no key with id '{key_id}'")
        raise Conflict(f"key '{key_id}' was already revoked", code="already_revoked")
    digest, row = done
    ring.put(digest, stored_key(row))
    return await _listing(page)


async def audit(page: Page) -> Response:
    page.viewer.require_admin("read the audit log")
    names = ("action", "actor", "tenant", "target")
    filters = page.params(names)
    f = AuditFilter(**filters)  # type: ignore[arg-type]
    cursor = page.param("cursor")
    try:
        rows, next_cursor = await asyncio.to_thread(page.deps.audit.query, f, AUDIT_PAGE, cursor)
    except BadCursor as exc:
        raise Invalid(str(exc), param="cursor") from None
    return page.render(
        "audit.html.j2", rows=[view(r) for r in rows], next_cursor=next_cursor, filters=filters
    )
