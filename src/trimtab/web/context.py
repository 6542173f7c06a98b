"""Who is looking at a page, what they may see, and the page being answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jinja2
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from trimtab.alerts.model import AlertChange
from trimtab.alerts.service import AlertService
from trimtab.audit.log import Actor, AuditLog
from trimtab.auth.keyring import KeyRing
from trimtab.auth.store import KeyStore
from trimtab.canary.plans import Plan
from trimtab.errors import Forbidden, Invalid, TooLarge
from trimtab.evals.runs import RunStore
from trimtab.evals.store import DatasetStore
from trimtab.incidents.containment import Containment
from trimtab.incidents.store import IncidentStore
from trimtab.policy.service import Policy
from trimtab.registry.store import RouteStore
from trimtab.rollouts.store import RolloutStore
from trimtab.slo.gauges import SloGauges
from trimtab.slo.store import SloStore
from trimtab.telemetry.store import TelemetryStore
from trimtab.types import OPERATORS, Principal

MAX_FORM_BYTES = 64 * 1024
_MAX_FORWARDED = 512


def _no_routes(tenant: str) -> set[str]:
    return set()


@dataclass(frozen=True, slots=True)
class Deps:
    """What the console reads and changes: the stores the API's handlers use."""

    engine: Engine
    telemetry: TelemetryStore
    keys: KeyRing
    key_store: KeyStore
    audit: AuditLog
    routes: RouteStore
    rollouts: RolloutStore
    plans: Mapping[str, Plan]
    slos: SloStore
    runs: RunStore
    datasets: DatasetStore
    policy: Policy
    on_change: Callable[[], Awaitable[object]]  # the route table serves a change at once
    slo_gauges: SloGauges  # every SLO's status, refreshed in the background
    alerts: AlertService | None = None
    alerts_changed: Callable[[Sequence[AlertChange]], None] | None = None  # incidents, outbox
    tenant_routes: Callable[[str], set[str]] = _no_routes  # a tenant's own routes' names
    incidents: IncidentStore | None = None
    containment: Containment | None = None  # an incident's actions, as the API's


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in key (or open access when keys are off) and its session's CSRF token."""

    principal: Principal
    csrf: str
    keys_on: bool

    @property
    def can_operate(self) -> bool:
        return self.principal.role in OPERATORS

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    def tenant(self, asked: str | None) -> str | None:
        """The tenant a query is limited to: the caller's own, unless an admin chooses
        (the API's rule, api/access.scoped_tenant)."""
        if self.principal.is_admin:
            return asked
        if asked is not None and asked != self.principal.tenant:
            raise Forbidden(
                f"a key of tenant '{self.principal.tenant}' may not read tenant '{asked}'"
            )
        return self.principal.tenant

    def require_operator(self, action: str) -> None:
        if not self.can_operate:
            raise Forbidden(
                f"only a key with role 'operator' or 'admin' may {action}; "
                f"this key has role '{self.principal.role}'"
            )

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise Forbidden(
                f"only a key with role 'admin' may {action}; "
                f"this key has role '{self.principal.role}'"
            )


@dataclass(slots=True)
class Page:
    """One request to the console: the request, the viewer, the id its errors carry."""

    request: Request
    viewer: Viewer
    deps: Deps
    request_id: str
    env: jinja2.Environment
    form: dict[str, str] = field(default_factory=dict)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """A page of the console: the template with the viewer, the path and its filters."""
        html = self.env.get_template(template).render(
            viewer=self.viewer,
            path=self.request.url.path,
            request_id=self.request_id,
            **context,
        )
        return HTMLResponse(html, status, {"x-trimtab-request-id": self.request_id})

    def param(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        return value if value not in (None, "") else None

    def params(self, names: tuple[str, ...]) -> dict[str, str]:
        return {n: v for n in names if (v := self.param(n)) is not None}

    def field(self, name: str, *, required: bool = False) -> str | None:
        value = (self.form.get(name) or "").strip()
        if not value:
            if required:
                raise Invalid(f"'{name}' is required", param=name)
            return None
        return value

    def actor(self) -> Actor:
        """Who an audited change is by: the key, the connection's peer, the request id."""
        p = self.viewer.principal
        forwarded = self.request.headers.get("x-forwarded-for")
        client = self.request.client
        return Actor(
            key_id=p.key_id,
            owner=p.owner,
            tenant=p.tenant,
            remote_addr=client.host[:64] if client is not None else None,
            request_id=self.request_id,
            forwarded_for=forwarded[:_MAX_FORWARDED] if forwarded else None,
        )


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the console's forms are small and all of this kind)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TooLarge(f"a console form is at most {MAX_FORM_BYTES} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if body and kind != "application/x-www-form-urlencoded":
        raise Invalid(f"a console form is sent as application/x-www-form-urlencoded, not {kind}")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}
