"""The asynchronous client (asyncio).

Its twin Client has the same methods and signatures (tests/client/test_twins.py
holds them so); the incident calls come from client/_incidents.py and the dataset
and eval calls from client/_evals.py, twin mixins with tests of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, Unpack

import httpx
import orjson

from trimtab.client import _calls as calls
from trimtab.client._core import (
    Call,
    Page,
    TrimtabError,
    answer,
    headers,
    incomplete,
    unreachable,
)
from trimtab.client._evals import AsyncEvalMethods
from trimtab.client._incidents import AsyncIncidentMethods
from trimtab.client.types import (
    Applied,
    AppliedSlo,
    Attestation,
    AuditEvent,
    AuditFilters,
    Costs,
    CreatedKey,
    Diff,
    Event,
    Key,
    PrunedSlos,
    RemovedSlo,
    RequestFilters,
    RequestRecord,
    Rollback,
    Rollout,
    RolloutForecast,
    Route,
    SloStatus,
    Summary,
    Version,
)

T = TypeVar("T")
P = TypeVar("P")

DEFAULT_URL = "http://127.0.0.1:4000"


class AsyncClient(AsyncIncidentMethods, AsyncEvalMethods):
    """A trimtab server's control-plane API, awaited; errors raise TrimtabError."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers(api_key), timeout=timeout_s
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.body
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None
        return answer(call, response)

    # -- keys (admin) --
    async def create_key(
        self,
        *,
        tenant: str,
        role: str,
        owner: str,
        name: str | None = None,
        expires_in: str | None = None,
    ) -> CreatedKey:
        """Create a key; its secret (`key`) is in this answer only."""
        return await self._run(calls.create_key(tenant, role, owner, name, expires_in))

    async def keys(self, tenant: str | None = None) -> list[Key]:
        return await self._run(calls.keys(tenant))

    async def key(self, key_id: str) -> Key:
        return await self._run(calls.key(key_id))

    async def revoke_key(self, key_id: str) -> Key:
        return await self._run(calls.revoke_key(key_id))

    # -- routes and versions --
    async def apply(self, yaml: str, message: str, *, source: str | None = None) -> list[Applied]:
        """Apply a routes file's text: a new version for each route whose content changed."""
        return await self._run(calls.apply(yaml, message, source))

    async def routes(self) -> list[Route]:
        return await self._run(calls.routes())

    async def route(self, name: str, *, tenant: str | None = None) -> dict[str, Any]:
        return await self._run(calls.route(name, tenant))

    async def versions(self, route: str, *, tenant: str | None = None) -> list[Version]:
        """A route's versions, newest first."""
        return await self._run(calls.versions(route, tenant))

    async def version(self, route: str, number: int | str, *, tenant: str | None = None) -> Version:
        """One version (`2` or `"v2"`) with its bundle."""
        return await self._run(calls.version(route, number, tenant))

    async def diff(
        self,
        route: str,
        before: int | str | None = None,
        after: int | str | None = None,
        *,
        tenant: str | None = None,
    ) -> Diff:
        """What changed; `after` defaults to the newest version, `before` to its parent."""
        return await self._run(calls.diff(route, before, after, tenant))

    async def timeline(self, route: str, *, tenant: str | None = None) -> list[Event]:
        """A route's whole timeline, oldest first (every page)."""
        events: list[Event] = []
        after: int | None = None
        while True:
            page = await self._run(calls.timeline_page(route, after, 1000, tenant))
            events.extend(page["data"])
            after = page.get("next_after")
            if after is None:
                return events

    # -- rollouts, rollback, attestations, feedback --
    async def start_rollout(
        self,
        route: str,
        to: int | str,
        *,
        plan: str | None = None,
        reason: str | None = None,
        tenant: str | None = None,
    ) -> Rollout:
        """Start a rollout; a gate refusal raises TrimtabError with code "gate_refused"."""
        return await self._run(calls.start_rollout(route, to, plan, reason, tenant))

    async def rollout(self, route: str, *, tenant: str | None = None) -> Rollout:
        """The route's current (or last) rollout and its latest decision."""
        return await self._run(calls.rollout(route, tenant))

    async def forecast(
        self, route: str, *, plan: str | None = None, tenant: str | None = None
    ) -> RolloutForecast:
        """What ``plan`` is expected to do on the route's recent traffic, before a rollout."""
        return await self._run(calls.forecast(route, plan, tenant))

    async def pause(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return await self._run(calls.move(route, "pause", reason, tenant))

    async def resume(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return await self._run(calls.move(route, "resume", reason, tenant))

    async def promote(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return await self._run(calls.move(route, "promote", reason, tenant))

    async def abort(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return await self._run(calls.move(route, "abort", reason, tenant))

    async def rollback(
        self,
        route: str,
        reason: str,
        *,
        to: int | str | None = None,
        override_gate: bool = False,
        tenant: str | None = None,
    ) -> Rollback:
        """Serve an earlier stable version (`override_gate`: admin, any version)."""
        return await self._run(calls.rollback(route, reason, to, override_gate, tenant))

    async def attest(
        self,
        route: str,
        version: int | str,
        *,
        kind: str,
        result: str,
        note: str | None = None,
        url: str | None = None,
        tenant: str | None = None,
    ) -> Attestation:
        """Record evidence (`url`: where it is) on a version, by the key's owner."""
        return await self._run(calls.attest(route, version, kind, result, note, url, tenant))

    async def feedback(
        self,
        request_id: str,
        *,
        score: float | None = None,
        thumbs: Literal["up", "down"] | None = None,
        comment: str | None = None,
        escalated: bool | None = None,
    ) -> dict[str, Any]:
        return await self._run(calls.feedback(request_id, score, thumbs, comment, escalated))

    # -- requests, summary, costs, budgets, audit --
    async def requests(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        tenant: str | None = None,
        status: str | int | None = None,
        user: str | None = None,
        session: str | None = None,
        feature: str | None = None,
        route: str | None = None,
        version: int | str | None = None,
        text: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[RequestRecord]:
        """One page of recorded requests, newest first (`status`: a code, "error" or "ok";
        `text`: in the stored bodies — a page may then be short, even empty, and go on)."""
        filters: calls.Filters = {
            "since": since, "until": until, "model": model, "provider": provider,
            "tenant": tenant, "status": None if status is None else str(status), "user": user,
            "session": session, "feature": feature, "route": route,
            "version": calls.version_label(version), "q": text,
        }  # fmt: skip
        return await self._run(calls.requests(filters, limit, cursor))

    async def request(self, request_id: str) -> RequestRecord:
        """One request with its bodies."""
        return await self._run(calls.request(request_id))

    async def summary(
        self, *, window: str = "1h", group_by: str = "model", tenant: str | None = None
    ) -> Summary:
        return await self._run(calls.summary(window, group_by, tenant))

    async def costs(
        self, *, window: str = "30d", group_by: str = "model", tenant: str | None = None
    ) -> Costs:
        return await self._run(calls.costs(window, group_by, tenant))

    async def budgets(self, *, tenant: str | None = None) -> dict[str, Any]:
        return await self._run(calls.budgets(tenant))

    async def budget_events(
        self, *, since: str | None = None, limit: int | None = None, tenant: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._run(calls.budget_events(since, limit, tenant))

    async def audit(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
        target: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """One page of the audit log (admin), newest first."""
        filters: calls.Filters = {
            "since": since, "until": until, "action": action, "actor": actor,
            "tenant": tenant, "target": target,
        }  # fmt: skip
        return await self._run(calls.audit(filters, limit, cursor))

    async def iter_requests(
        self, **filters: Unpack[RequestFilters]
    ) -> AsyncIterator[RequestRecord]:
        """Every matching request, newest first, page after page (`limit`: the page size)."""
        cursor: str | None = None
        while True:
            page = await self.requests(**filters, cursor=cursor)
            for row in page.data:
                yield row
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def iter_audit(self, **filters: Unpack[AuditFilters]) -> AsyncIterator[AuditEvent]:
        """Every matching audit row, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = await self.audit(**filters, cursor=cursor)
            for row in page.data:
                yield row
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- alerts ----------------------------------------------------------------------------

    async def alerts(
        self, *, state: str | None = None, severity: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Alerts, newest first (state: open, firing, acknowledged, resolved)."""
        return await self._run(calls.alerts(state, severity, limit))

    async def alert(self, alert_id: int) -> dict[str, Any]:
        """One alert, with what each sink was sent and how it went."""
        return await self._run(calls.alert(alert_id))

    async def ack_alert(self, alert_id: int, message: str) -> dict[str, Any]:
        """Acknowledge a firing alert (PagerDuty hears `acknowledge`)."""
        return await self._run(calls.ack_alert(alert_id, message))

    async def silences(self, *, every: bool = False) -> list[dict[str, Any]]:
        """Active silences (every one with `every`)."""
        return await self._run(calls.silences(every))

    async def silence(self, matchers: list[str], duration: str, message: str) -> dict[str, Any]:
        """Silence alerts matching every matcher (label=value, !=, =~) for `duration`."""
        return await self._run(calls.silence(matchers, duration, message))

    async def unsilence(self, silence_id: int) -> dict[str, Any]:
        """End a silence now."""
        return await self._run(calls.unsilence(silence_id))

    # -- SLOs ------------------------------------------------------------------------------

    async def apply_slos(
        self, yaml: str, message: str, *, source: str | None = None
    ) -> list[AppliedSlo]:
        """Apply the `slos:` section of a file's text; each changed SLO is replaced."""
        return await self._run(calls.apply_slos(yaml, message, source))

    async def prune_slos(
        self,
        yaml: str,
        message: str,
        *,
        source: str | None = None,
        dry_run: bool = False,
        planned_routes: Sequence[str] = (),
        planned_suites: Sequence[str] = (),
    ) -> PrunedSlos:
        """Apply the `slos:` section of a file's text and delete the caller's SLOs (an
        admin's: the shared ones) it does not name; `dry_run`: say so, change nothing
        (`planned_routes`, `planned_suites`: the routes and the caller's eval suites the
        same apply creates first, taken as known)."""
        return await self._run(
            calls.prune_slos(yaml, message, source, dry_run, planned_routes, planned_suites)
        )

    async def delete_slo(self, name: str, *, tenant: str | None = None) -> RemovedSlo:
        """Delete an SLO (an admin's `tenant` picks a tenant's); its open alerts resolve."""
        return await self._run(calls.delete_slo(name, tenant))

    async def slos(self, *, route: str | None = None, tenant: str | None = None) -> list[SloStatus]:
        """Each SLO's status (of one route with `route`)."""
        return await self._run(calls.slos(route, tenant))

    async def slo(self, name: str, *, tenant: str | None = None) -> SloStatus:
        """One SLO's status: SLI, error budget, burn rates and alert verdicts."""
        return await self._run(calls.slo(name, tenant))

    async def slo_report(
        self, *, month: str | None = None, route: str | None = None, tenant: str | None = None
    ) -> dict[str, Any]:
        """The SLA report of a month (YYYY-MM; default: the last complete one)."""
        return await self._run(calls.slo_report(month, route, tenant))

    async def cost_forecast(self, *, tenant: str | None = None) -> dict[str, Any]:
        """Each budget's spend forecast to the end of its period."""
        return await self._run(calls.cost_forecast(tenant))

    async def unit_economics(
        self, *, window: str = "30d", group_by: str = "route", tenant: str | None = None
    ) -> dict[str, Any]:
        """Cost per request, per successful request and per 1,000 tokens, grouped."""
        return await self._run(calls.unit_economics(window, group_by, tenant))

    # -- data protection (admin) --
    async def erase_user(self, user: str, *, tenant: str | None = None) -> dict[str, Any]:
        """Erase everything stored of `user` (of one tenant, or all); the counts removed."""
        return await self._run(calls.erase_user(user, tenant))

    async def export_user(
        self, user: str, *, tenant: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Everything stored of `user`, one {"kind", "data"} record at a time as it arrives."""
        async for line in self.export_user_lines(user, tenant=tenant):
            yield orjson.loads(line)

    async def export_user_lines(
        self, user: str, *, tenant: str | None = None
    ) -> AsyncIterator[str]:
        """The export as the server streams it: its JSON Lines, one at a time (no newline)."""
        call = calls.export_user(user, tenant)
        try:
            async with self._http.stream(call.method, call.path, params=call.params) as response:
                if response.status_code >= 400:
                    await response.aread()
                    answer(call, response)  # raises the refusal
                try:
                    async for line in response.aiter_lines():
                        if line:
                            yield line
                except httpx.HTTPError as exc:
                    raise incomplete(call, response, exc) from None
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None


__all__ = ["AsyncClient", "TrimtabError"]
