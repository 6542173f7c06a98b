"""GET /api/openapi.json: the OpenAPI 3.1 document of the control-plane API.

It is built from the app's own routes: every /api route is a `DeclaredRoute` carrying
the `Endpoint` its handler parses with (api/schema.py), and the shapes it names
(api/models.py, api/views.py) become JSON Schema through pydantic. Nothing here is written by hand
per endpoint, so the document cannot drift from what the handlers accept and answer.
It holds no data, so it needs no key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from trimtab.api.schema import DeclaredRoute, Endpoint
from trimtab.api.views import ErrorBody, OpenAPIDocument
from trimtab.types import new_request_id

OPENAPI = Endpoint(
    "GET",
    "/api/openapi.json",
    "getOpenAPI",
    "meta",
    "This document: the control-plane API in OpenAPI 3.1",
    None,
    OpenAPIDocument,
    description="Needs no key: it describes the API and holds no data.",
)

_REF = "#/components/schemas/{model}"
_SECURITY = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
}
_REQUEST_ID = {
    "x-trimtab-request-id": {
        "description": "The request's id, also in an error's message and `request_id`",
        "schema": {"type": "string"},
    }
}
_ERRORS = {
    400: "A parameter or the body is invalid; `param` names it",
    401: "No key, or one that is invalid, revoked or expired",
    403: "The key's role or tenant may not do this",
    404: "Not found (or not visible to this key's tenant)",
    409: "Conflicts with the current state",
    413: "The body is larger than this endpoint accepts",
    503: "The store (or the key store) is unreachable; retry later",
}


class Components:
    """The named schemas of the document, one per shape."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, shape: type[Any]) -> dict[str, str]:
        name = shape.__name__
        schema = TypeAdapter(shape).json_schema(ref_template=_REF)
        for def_name, definition in [*schema.pop("$defs", {}).items(), (name, schema)]:
            # one name, one shape: two shapes of one name would answer each other's schema
            known = self.schemas.setdefault(def_name, definition)
            if known != definition:
                raise ValueError(f"two different schemas are named {def_name}: rename one")
        return {"$ref": _REF.format(model=name)}


def _operation(endpoint: Endpoint, components: Components) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.name,
        "tags": [endpoint.tag],
        "summary": endpoint.summary,
    }
    roles = endpoint.roles
    who = "No key needed." if roles is None else f"Roles: {', '.join(sorted(roles))}."
    op["description"] = f"{endpoint.description}\n\n{who}".strip()
    op["x-roles"] = [] if roles is None else sorted(roles)
    op["security"] = [] if roles is None else [{"bearer": []}, {"apiKey": []}]
    if endpoint.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in endpoint.params
        ]
    body = endpoint.body
    if body is not None:
        op["requestBody"] = {
            "required": not body.allow_empty,
            "description": f"A JSON object of at most {body.max_bytes // 1024} KiB",
            "content": {"application/json": {"schema": components.ref(body.shape)}},
        }
    responses: dict[str, Any] = {
        str(endpoint.status): {
            "description": HTTPStatus(endpoint.status).phrase,
            "headers": _REQUEST_ID,
            "content": {endpoint.media_type: {"schema": components.ref(endpoint.response)}},
        }
    }
    error = components.ref(ErrorBody)
    for status in endpoint.error_statuses():
        responses[str(status)] = {
            "description": _ERRORS.get(status, HTTPStatus(status).phrase),
            "headers": _REQUEST_ID,
            "content": {"application/json": {"schema": error}},
        }
    op["responses"] = responses
    return op


def document(endpoints: Iterable[Endpoint], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `endpoints`, in their order."""
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        item = paths.setdefault(endpoint.path, {})
        method = endpoint.method.lower()
        if method in item:
            raise ValueError(f"{endpoint.method} {endpoint.path} is declared twice")
        item[method] = _operation(endpoint, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trimtab control-plane API",
            "version": version,
            "description": (
                "Telemetry, costs, keys, routes, rollouts and the audit log of a trimtab "
                'gateway. Errors are OpenAI-style: {"error": {message, type, param, code, '
                "request_id}}."
            ),
        },
        "paths": paths,
        "components": {"schemas": components.schemas, "securitySchemes": _SECURITY},
    }


def declared(routes: Iterable[BaseRoute]) -> list[Endpoint]:
    return [r.declaration for r in routes if isinstance(r, DeclaredRoute)]


class OpenAPIRoute:
    """Serves the document of `routes` (the app's list, this route among them), built on
    first use: by then the list is complete."""

    def __init__(self, routes: Sequence[BaseRoute], version: str) -> None:
        self._routes = routes
        self._version = version
        self._body: bytes | None = None

    def route(self) -> DeclaredRoute:
        return OPENAPI.route(self.serve)

    def body(self) -> bytes:
        if self._body is None:
            endpoints = declared(self._routes)
            self._body = orjson.dumps(document(endpoints, version=self._version))
        return self._body

    async def serve(self, request: Request) -> Response:
        return Response(
            self.body(),
            200,
            {"x-trimtab-request-id": new_request_id()},
            media_type="application/json",
        )
