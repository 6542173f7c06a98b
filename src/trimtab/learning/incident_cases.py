"""An incident's failed requests as the next version of a dataset: the reusable rule of kind
`dataset_case` ("every incident should buy us one reusable rule"), so the eval gate checks
the next release against exactly what broke. One function, called by the API
(`POST /api/incidents/{id}/rules` with `from_failed`) and the console's incident page.

It sits above `incidents/` and `evals/`, which may not import each other (docs/architecture.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trimtab.audit.log import Actor
from trimtab.errors import Conflict, Invalid
from trimtab.evals.datasets import Item
from trimtab.evals.store import DatasetKey, DatasetStore
from trimtab.incidents.failed import FailedRequest, failed_requests
from trimtab.incidents.records import Incident
from trimtab.incidents.store import IncidentStore
from trimtab.types import name_problem

__all__ = ["case", "push_failed_cases"]

MESSAGE_CHARS = 4000


def case(incident: Incident, failed: FailedRequest) -> Item | None:
    """A dataset item from a failed request: the variables it sent to the route (else its
    messages), the failure in its metadata; None when its body was not recorded."""
    body = failed.body
    if body is None:
        return None
    metadata = {
        "incident": incident.id,
        "request_id": failed.id,
        "status_code": failed.status_code,
        "route": failed.route,
        "version": failed.version,
        "error": (failed.error or "")[:500],
        "at": failed.started_at,
    }
    variables = body.get("variables")
    if isinstance(variables, dict) and variables:
        return Item(id=failed.id, variables=variables, tags=("incident",), metadata=metadata)
    messages = body.get("messages")
    if isinstance(messages, list) and messages and all(
        isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
        and isinstance(m.get("content"), str)
        for m in messages
    ):  # fmt: skip
        kept = tuple({"role": m["role"], "content": m["content"]} for m in messages)
        return Item(id=failed.id, messages=kept, tags=("incident",), metadata=metadata)
    return None


def push_failed_cases(
    incidents: IncidentStore,
    datasets: DatasetStore,
    incident: Incident,
    name: str | None,
    message: str,
    by: Actor,
) -> tuple[str, dict[str, Any]]:
    """Push the incident's failed requests as the next version of dataset `name` (default
    `incident-ID`, in the incident's scope): the rule's reference `name@vN` and its detail.
    Refused (Conflict) when the incident names no route or has no failed request with a
    recorded body in its window; a bad name is Invalid naming the `dataset` field."""
    if not incident.routes:
        raise Conflict(
            f"incident {incident.id} names no route: there are no failed route requests "
            "to build a dataset case from",
            code="no_failed_requests",
        )
    name = name or f"incident-{incident.id}"
    problem = name_problem("dataset", name)
    if problem is not None:
        raise Invalid(f"dataset: {problem}", code="invalid_parameter", param="dataset")
    failed = failed_requests(incidents.engine, incident, datetime.now(UTC))
    items = [item for f in failed if (item := case(incident, f)) is not None]
    if not items:
        raise Conflict(
            f"incident {incident.id} has no failed request with a recorded body on "
            f"{', '.join(incident.routes)} in its window ({len(failed)} failed)",
            code="no_failed_requests",
        )
    pushed = datasets.push(
        DatasetKey(incident.scope, name),
        items,
        message=f"incident {incident.id}: {message}"[:MESSAGE_CHARS],
        actor=by,
    )
    version = pushed.version
    return f"{name}@v{version.number}", {
        "dataset": name,
        "tenant": incident.scope or None,
        "version": version.number,
        "items": version.items,
        "created": pushed.created,
    }
