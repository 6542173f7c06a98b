"""Who may read what on the control-plane API, and who an audited change is by."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from trimtab.audit.log import Actor, AuditEvent
from trimtab.auth.keyring import KeyRing, require_role
from trimtab.errors import Forbidden
from trimtab.types import OPERATORS, READERS, Principal, new_request_id

_MAX_FORWARDED = 512


def reader(keys: KeyRing, request: Request, action: str = "read telemetry") -> Principal:
    """A caller with a reading role (viewer, operator, admin), or a 401/403 naming `action`."""
    principal = keys.authenticate(request.headers)
    require_role(principal, READERS, action)
    return principal


def require_admin(principal: Principal, action: str) -> None:
    """A 403 that names the action and the caller's role, unless the caller is an admin."""
    if not principal.is_admin:
        raise Forbidden(
            f"only a key with role 'admin' may {action}; this key has role '{principal.role}'"
        )


def admin(keys: KeyRing, request: Request, action: str) -> Principal:
    """A caller with role admin, or a 401/403 that names the action and the caller's role."""
    principal = keys.authenticate(request.headers)
    require_admin(principal, action)
    return principal


def operator(keys: KeyRing, request: Request, action: str) -> Principal:
    """A caller with role operator or admin (who change routes, SLOs, datasets and run
    evals), or a 401/403 that names the action and the caller's role."""
    principal = keys.authenticate(request.headers)
    if principal.role not in OPERATORS:
        raise Forbidden(
            f"only a key with role 'operator' or 'admin' may {action}; "
            f"this key has role '{principal.role}'"
        )
    return principal


def scoped_tenant(principal: Principal, asked: str | None) -> str | None:
    """The tenant a query is limited to: the caller's own, unless an admin chooses."""
    if principal.is_admin:
        return asked
    if asked is not None and asked != principal.tenant:
        raise Forbidden(f"a key of tenant '{principal.tenant}' may not read tenant '{asked}'")
    return principal.tenant


def read_scope(principal: Principal, asked: str | None, what: str) -> str | None:
    """The scope whose `what` (say "SLOs") a caller reads: an admin's the one it asks for
    (None: all; "": the shared one), anyone else's its own tenant's; asking for another is
    a 403."""
    if principal.is_admin:
        return asked
    if asked is not None and asked != principal.tenant:
        raise Forbidden(
            f"a key of tenant '{principal.tenant}' may not read the {what} of "
            + (f"tenant '{asked}'" if asked else "the shared scope")
        )
    return principal.tenant


def actor(request: Request, principal: Principal, request_id: str | None) -> Actor:
    """The key `principal` acting through `request`. The address is the peer of the
    connection (the ASGI scope's client); `x-forwarded-for`, which the client controls,
    goes into the audit row's detail."""
    forwarded = request.headers.get("x-forwarded-for")
    client = request.client
    return Actor(
        key_id=principal.key_id,
        owner=principal.owner,
        tenant=principal.tenant,
        remote_addr=client.host[:64] if client is not None else None,
        request_id=request_id,
        forwarded_for=forwarded[:_MAX_FORWARDED] if forwarded else None,
    )


def audit_event(
    request: Request,
    principal: Principal,
    action: str,
    *,
    target: str | None = None,
    tenant: str | None = None,
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """An audit event for an action taken by `principal` through `request`."""
    return actor(request, principal, request_id).event(
        action, target=target, tenant=tenant, detail=detail
    )


def json_response(data: object, status: int = 200, request_id: str | None = None) -> Response:
    return Response(
        orjson.dumps(data),
        status,
        {"x-trimtab-request-id": request_id or new_request_id()},
        media_type="application/json",
    )
