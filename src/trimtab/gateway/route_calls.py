"""`model: "route:NAME"`: a request to a route becomes a request to its version's model (pure).

The version's messages, rendered with the body field `variables`, come first; the messages
the client sent follow. The version's params win over the client's for every key the
version sets; the client's other fields (stream, user, metadata, tools, ...) pass through.
The body that leaves names the version's model, so the gateway's pools, retries,
fallbacks, breakers and cache apply as to any request for that model.
"""

from __future__ import annotations

from typing import Any

from trimtab.errors import GatewayError
from trimtab.registry.bundle import MissingVariables, VariableError, render
from trimtab.rollouts.table import RouteTable, Version
from trimtab.types import Wire

ROUTE_PREFIX = "route:"
VARIABLES_FIELD = "variables"
_ANTHROPIC_PARAMS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "stop": "stop_sequences",
}
_LISTED = 20


def _bad(message: str, param: str) -> GatewayError:
    return GatewayError(400, "invalid_request", message, param=param)


def _unknown(name: str, table: RouteTable, tenant: str | None) -> GatewayError:
    names = table.names(tenant)
    shown = ", ".join(names[:_LISTED]) + (", ..." if len(names) > _LISTED else "")
    return GatewayError(
        404,
        "route_not_found",
        f"route '{name}' is not defined on this gateway (routes: {shown or 'none'})",
        param="model",
    )


def resolve_route_request(
    body: dict[str, Any],
    table: RouteTable,
    *,
    wire: Wire = "openai",
    tenant: str | None = None,
    sticky_key: str | None = None,
    chosen: Version | None = None,
) -> tuple[dict[str, Any], str | None, str | None]:
    """(the body to serve, the route, the version label) for a `route:NAME` request.

    Any other model: the body unchanged, None, None. `tenant` is the caller's: NAME is
    its tenant's own route, else the shared one (rollouts/table.py); another tenant's
    route answers 404, as if it did not exist (None: shared routes only). Raises
    GatewayError 404 for an unknown route and 400 for a missing or unusable variable.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model.startswith(ROUTE_PREFIX):
        return body, None, None
    name = model[len(ROUTE_PREFIX) :]
    entry = table.get(name, tenant)
    if entry is None:
        raise _unknown(name, table, tenant)
    version = chosen or table.version_for(entry, sticky_key)
    what = f"route '{name}' {version.label}"
    variables = body.get(VARIABLES_FIELD)
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise _bad(f"'{VARIABLES_FIELD}' must be an object of template variables", "variables")
    try:
        rendered = render(version.bundle, variables)
    except MissingVariables as exc:
        raise _bad(
            f"{what}: {exc}; send them in the body field '{VARIABLES_FIELD}' "
            "(with the OpenAI SDK: extra_body={'variables': {...}})",
            f"{VARIABLES_FIELD}.{exc.names[0]}",
        ) from None
    except VariableError as exc:
        raise _bad(f"{what}: {exc}", VARIABLES_FIELD) from None
    sent = body.get("messages")
    if sent is None:
        sent = []
    if not isinstance(sent, list):
        raise _bad("'messages' must be an array", "messages")
    out = {k: v for k, v in body.items() if k != VARIABLES_FIELD}
    out["model"] = version.bundle.model
    if wire == "openai":
        out["messages"] = [*rendered, *sent]
        out.update(version.bundle.params)
        if "max_tokens" in version.bundle.params:
            out.pop("max_completion_tokens", None)  # the same limit under its newer name
    else:
        _anthropic(out, rendered, sent, version.bundle.params, what)
    return out, name, version.label


def _anthropic(
    out: dict[str, Any],
    rendered: list[dict[str, str]],
    sent: list[Any],
    params: Any,
    what: str,
) -> None:
    """Template system messages go to `system`, before the client's own system prompt."""
    system = "\n\n".join(m["content"] for m in rendered if m["role"] == "system")
    if system:
        theirs = out.get("system")
        if theirs is None or theirs == "":
            out["system"] = system
        elif isinstance(theirs, str):
            out["system"] = system + "\n\n" + theirs
        elif isinstance(theirs, list):
            out["system"] = [{"type": "text", "text": system}, *theirs]
        else:
            raise _bad("'system' must be a string or an array of content blocks", "system")
    out["messages"] = [*(m for m in rendered if m["role"] != "system"), *sent]
    for key, value in params.items():
        field = _ANTHROPIC_PARAMS.get(key)
        if field is None:
            raise _bad(
                f"{what} sets '{key}', which the Anthropic Messages format has no field for; "
                "call this route through /v1/chat/completions",
                "model",
            )
        out[field] = [value] if field == "stop_sequences" and isinstance(value, str) else value
