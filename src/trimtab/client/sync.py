"""The synchronous client.

Its twin AsyncClient has the same methods and signatures (tests/client/test_twins.py
holds them so); the incident calls come from client/_incidents.py and the dataset
and eval calls from client/_evals.py, twin mixins with tests of their own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
from trimtab.client._evals import EvalMethods
from trimtab.client._incidents import IncidentMethods
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


class Client(IncidentMethods, EvalMethods):
    """A trimtab server's control-plane API; errors raise TrimtabError."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers(api_key), timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, json=call.body
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None
        return answer(call, response)

    # -- keys (admin) --
    def create_key(
        self,
        *,
        tenant: str,
        role: str,
        owner: str,
        name: str | None = None,
        expires_in: str | None = None,
    ) -> CreatedKey:
        """Create a key; its secret (`key`) is in this answer only."""
        return self._run(calls.create_key(tenant, role, owner, name, expires_in))

    def keys(self, tenant: str | None = None) -> list[Key]:
        return self._run(calls.keys(tenant))

    def key(self, key_id: str) -> Key:
        return self._run(calls.key(key_id))

    def revoke_key(self, key_id: str) -> Key:
        return self._run(calls.revoke_key(key_id))

    # -- routes and versions --
    def apply(self, yaml: str, message: str, *, source: str | None = None) -> list[Applied]:
        """Apply a routes file's text: a new version for each route whose content changed."""
        return self._run(calls.apply(yaml, message, source))

    def routes(self) -> list[Route]:
        return self._run(calls.routes())

    def route(self, name: str, *, tenant: str | None = None) -> dict[str, Any]:
        return self._run(calls.route(name, tenant))

    def versions(self, route: str, *, tenant: str | None = None) -> list[Version]:
        """A route's versions, newest first."""
        return self._run(calls.versions(route, tenant))

    def version(self, route: str, number: int | str, *, tenant: str | None = None) -> Version:
        """One version (`2` or `"v2"`) with its bundle."""
        return self._run(calls.version(route, number, tenant))

    def diff(
        self,
        route: str,
        before: int | str | None = None,
        after: int | str | None = None,
        *,
        tenant: str | None = None,
    ) -> Diff:
        """What changed; `after` defaults to the newest version, `before` to its parent."""
        return self._run(calls.diff(route, before, after, tenant))

    def timeline(self, route: str, *, tenant: str | None = None) -> list[Event]:
        """A route's whole timeline, oldest first (every page)."""
        events: list[Event] = []
        after: int | None = None
        while True:
            page = self._run(calls.timeline_page(route, after, 1000, tenant))
            events.extend(page["data"])
            after = page.get("next_after")
            if after is None:
                return events

    # -- rollouts, rollback, attestations, feedback --
    def start_rollout(
        self,
        route: str,
        to: int | str,
        *,
        plan: str | None = None,
        reason: str | None = None,
        tenant: str | None = None,
    ) -> Rollout:
        """Start a rollout; a gate refusal raises TrimtabError with code "gate_refused"."""
        return self._run(calls.start_rollout(route, to, plan, reason, tenant))

    def rollout(self, route: str, *, tenant: str | None = None) -> Rollout:
        """The route's current (or last) rollout and its latest decision."""
        return self._run(calls.rollout(route, tenant))

    def forecast(
        self, route: str, *, plan: str | None = None, tenant: str | None = None
    ) -> RolloutForecast:
        """What ``plan`` is expected to do on the route's recent traffic, before a rollout."""
        return self._run(calls.forecast(route, plan, tenant))

    def pause(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return self._run(calls.move(route, "pause", reason, tenant))

    def resume(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return self._run(calls.move(route, "resume", reason, tenant))

    def promote(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return self._run(calls.move(route, "promote", reason, tenant))

    def abort(self, route: str, reason: str, *, tenant: str | None = None) -> Rollout:
        return self._run(calls.move(route, "abort", reason, tenant))

    def rollback(
        self,
        route: str,
        reason: str,
        *,
        to: int | str | None = None,
        override_gate: bool = False,
        tenant: str | None = None,
    ) -> Rollback:
        """Serve an earlier stable version (`override_gate`: admin, any version)."""
        return self._run(calls.rollback(route, reason, to, override_gate, tenant))

    def attest(
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
        return self._run(calls.attest(route, version, kind, result, note, url, tenant))

    def feedback(
        self,
        request_id: str,
        *,
        score: float | None = None,
        thumbs: Literal["up", "down"] | None = None,
        comment: str | None = None,
        escalated: bool | None = None,
    ) -> dict[str, Any]:
        return self._run(calls.feedback(request_id, score, thumbs, comment, escalated))

    # -- requests, summary, costs, budgets, audit --
    def requests(
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
        return self._run(calls.requests(filters, limit, cursor))

    def request(self, request_id: str) -> RequestRecord:
        """One request with its bodies."""
        return self._run(calls.request(request_id))

    def summary(
        self, *, window: str = "1h", group_by: str = "model", tenant: str | None = None
    ) -> Summary:
        return self._run(calls.summary(window, group_by, tenant))

    def costs(
        self, *, window: str = "30d", group_by: str = "model", tenant: str | None = None
    ) -> Costs:
        return self._run(calls.costs(window, group_by, tenant))

    def budgets(self, *, tenant: str | None = None) -> dict[str, Any]:
        return self._run(calls.budgets(tenant))

    def budget_events(
        self, *, since: str | None = None, limit: int | None = None, tenant: str | None = None
    ) -> list[dict[str, Any]]:
        return self._run(calls.budget_events(since, limit, tenant))

    def audit(
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
        return self._run(calls.audit(filters, limit, cursor))

    def iter_requests(self, **filters: Unpack[RequestFilters]) -> Iterator[RequestRecord]:
        """Every matching request, newest first, page after page (`limit`: the page size)."""
        cursor: str | None = None
        while True:
            page = self.requests(**filters, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_audit(self, **filters: Unpack[AuditFilters]) -> Iterator[AuditEvent]:
        """Every matching audit row, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = self.audit(**filters, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- alerts ----------------------------------------------------------------------------

    def alerts(
        self, *, state: str | None = None, severity: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Alerts, newest first (state: open, firing, acknowledged, resolved)."""
        return self._run(calls.alerts(state, severity, limit))

    def alert(self, alert_id: int) -> dict[str, Any]:
        """One alert, with what each sink was sent and how it went."""
        return self._run(calls.alert(alert_id))

    def ack_alert(self, alert_id: int, message: str) -> dict[str, Any]:
        """Acknowledge a firing alert (PagerDuty hears `acknowledge`)."""
        return self._run(calls.ack_alert(alert_id, message))

    def silences(self, *, every: bool = False) -> list[dict[str, Any]]:
        """Active silences (every one with `every`)."""
        return self._run(calls.silences(every))

    def silence(self, matchers: list[str], duration: str, message: str) -> dict[str, Any]:
        """Silence alerts matching every matcher (label=value, !=, =~) for `duration`."""
        return self._run(calls.silence(matchers, duration, message))

    def unsilence(self, silence_id: int) -> dict[str, Any]:
        """End a silence now."""
        return self._run(calls.unsilence(silence_id))

    # -- SLOs ------------------------------------------------------------------------------

    def apply_slos(self, yaml: str, message: str, *, source: str | None = None) -> list[AppliedSlo]:
        """Apply the `slos:` section of a file's text; each changed SLO is replaced."""
        return self._run(calls.apply_slos(yaml, message, source))

    def prune_slos(
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
        return self._run(
            calls.prune_slos(yaml, message, source, dry_run, planned_routes, planned_suites)
        )

    def delete_slo(self, name: str, *, tenant: str | None = None) -> RemovedSlo:
        """Delete an SLO (an admin's `tenant` picks a tenant's); its open alerts resolve."""
        return self._run(calls.delete_slo(name, tenant))

    def slos(self, *, route: str | None = None, tenant: str | None = None) -> list[SloStatus]:
        """Each SLO's status (of one route with `route`)."""
        return self._run(calls.slos(route, tenant))

    def slo(self, name: str, *, tenant: str | None = None) -> SloStatus:
        """One SLO's status: SLI, error budget, burn rates and alert verdicts."""
        return self._run(calls.slo(name, tenant))

    def slo_report(
        self, *, month: str | None = None, route: str | None = None, tenant: str | None = None
    ) -> dict[str, Any]:
        """The SLA report of a month (YYYY-MM; default: the last complete one)."""
        return self._run(calls.slo_report(month, route, tenant))

    def cost_forecast(self, *, tenant: str | None = None) -> dict[str, Any]:
        """Each budget's spend forecast to the end of its period."""
        return self._run(calls.cost_forecast(tenant))

    def unit_economics(
        self, *, window: str = "30d", group_by: str = "route", tenant: str | None = None
    ) -> dict[str, Any]:
        """Cost per request, per successful request and per 1,000 tokens, grouped."""
        return self._run(calls.unit_economics(window, group_by, tenant))

    # -- data protection (admin) --
    def erase_user(self, user: str, *, tenant: str | None = None) -> dict[str, Any]:
        """Erase everything stored of `user` (of one tenant, or all); the counts removed."""
        return self._run(calls.erase_user(user, tenant))

    def export_user(self, user: str, *, tenant: str | None = None) -> Iterator[dict[str, Any]]:
        """Everything stored of `user`, one {"kind", "data"} record at a time as it arrives."""
        for line in self.export_user_lines(user, tenant=tenant):
            yield orjson.loads(line)

    def export_user_lines(self, user: str, *, tenant: str | None = None) -> Iterator[str]:
        """The export as the server streams it: its JSON Lines, one at a time (no newline)."""
        call = calls.export_user(user, tenant)
        try:
            with self._http.stream(call.method, call.path, params=call.params) as response:
                if response.status_code >= 400:
                    response.read()
                    answer(call, response)  # raises the refusal
                try:
                    for line in response.iter_lines():
                        if line:
                            yield line
                except httpx.HTTPError as exc:
                    raise incomplete(call, response, exc) from None
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None


__all__ = ["Client", "TrimtabError"]
