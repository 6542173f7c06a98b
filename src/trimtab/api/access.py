"""Who may read what on the control-plane API."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from trimtab.auth.keyring import KeyRing, require_role
from trimtab.errors import GatewayError, error_body
from trimtab.types import READERS, Principal, new_request_id


def reader(keys: KeyRing, request: Request, action: str = "read telemetry") -> Principal:
    """A caller with a reading role (viewer, operator, admin), or a 401/403 naming `action`."""
    principal = keys.authenticate(request.headers)
    require_role(principal, READERS, action)
    return principal


def admin(keys: KeyRing, request: Request, action: str) -> Principal:
    """A caller with role admin, or a 401/403 that names the action and the caller's role."""
    principal = keys.authenticate(request.headers)
    if not principal.is_admin:
        raise GatewayError(
            403,
            "forbidden",
            f"only a key with role 'admin' may {action}; this key has role '{principal.role}'",
        )
    return principal


def scoped_tenant(principal: Principal, asked: str | None) -> str | None:
    """The tenant a query is limited to: the caller's own, unless an admin chooses."""
    if principal.is_admin:
        return asked
    if asked is not None and asked != principal.tenant:
        raise GatewayError(
            403, "forbidden", f"a key of tenant '{principal.tenant}' may not read tenant '{asked}'"
        )
    return principal.tenant


def json_response(data: object, status: int = 200, request_id: str | None = None) -> Response:
    return Response(
        orjson.dumps(data),
        status,
        {"x-trimtab-request-id": request_id or new_request_id()},
        media_type="application/json",
    )


def error_response(err: GatewayError) -> Response:
    rid = new_request_id()
    headers = {"x-trimtab-request-id": rid}
    return Response(
        error_body(err, "openai", rid), err.status, headers, media_type="application/json"
    )
