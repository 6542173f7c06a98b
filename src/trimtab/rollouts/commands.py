"""`trimtab rollout …`, `trimtab rollback` and `trimtab attest` against a running trimtab."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trimtab.registry.client import RoutesClient
from trimtab.registry.commands import DEFAULT_URL, ApiKey, Url, call

Route = Annotated[str, typer.Argument(help="The route's name.")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why: it goes on the timeline.")]

# names are per tenant: a caller's NAME is its tenant's route, else the shared one
Tenant = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="The route of this tenant (an admin may name any; '' for the shared one).",
    ),
]

# `attest --url` is the evidence's address, as the field writes it; the server comes from here
Server = Annotated[str, typer.Option("--server", envvar="TRIMTAB_URL", help="The trimtab server.")]

rollout = typer.Typer(help="Move a route's traffic to a candidate version, or stop doing so.")


def _send(
    url: str,
    api_key: str | None,
    route: str,
    rest: str,
    body: dict[str, Any],
    tenant: str | None = None,
) -> Any:
    path = RoutesClient.route_path(route, rest, tenant)
    return call(url, api_key, lambda client: client.post(path, body))


def _show(data: dict[str, Any]) -> None:
    out = Console(highlight=False)
    out.print(
        f"rollout {data['id']} of {escape(data['route'])}: v{data['stable_version']} -> "
        f"v{data['candidate_version']}, [bold]{data['status']}[/bold], stage "
        f"{data['stage'] + 1}/{len(data['stages'])} ({data['percent']:g} %)"
    )
    decision = data.get("last_decision") or {}
    for reason in decision.get("reasons", []):
        out.print(f"  {escape(reason)}")
    if decision.get("metrics"):
        out.print(_metrics(decision))


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _metrics(decision: dict[str, Any]) -> Table:
    """The latest decision's verdicts: the values, candidate/stable and its interval."""
    seen = decision.get("requests") or {}
    table = Table(
        title=f"{decision.get('action')} at {decision.get('at', '?')[:19]}: "
        f"{seen.get('candidate', 0)} canary and {seen.get('stable', 0)} stable requests so far",
        title_justify="left",
        box=None,
    )
    for column in ("metric", "verdict", "stable", "candidate", "ratio", "interval", "margin"):
        table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
    for m in decision["metrics"]:
        interval = f"[{_number(m.get('lower'))}, {_number(m.get('upper'))}]"
        table.add_row(
            str(m.get("metric")),
            str(m.get("verdict")),
            _number(m.get("stable_value")),
            _number(m.get("candidate_value")),
            _number(m.get("estimate")),
            interval,
            _number(m.get("margin")),
        )
    return table


@rollout.command("start")
def start(
    route: Route,
    to: Annotated[str, typer.Option("--to", help="The candidate version, e.g. v2.")],
    plan: Annotated[str, typer.Option(help="A plan from the server's config.")] = "default",
    reason: Annotated[str | None, typer.Option("--reason", "-r")] = None,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Start a rollout (refused, with what is missing, when the route's gate is not met)."""
    body = {"to": to, "plan": plan, "reason": reason}
    _show(_send(url, api_key, route, "rollouts", body, tenant))


def _move(name: str) -> None:
    def command(
        route: Route,
        reason: Reason,
        tenant: Tenant = None,
        url: Url = DEFAULT_URL,
        api_key: ApiKey = None,
    ) -> None:
        _show(_send(url, api_key, route, f"rollout/{name}", {"reason": reason}, tenant))

    command.__doc__ = f"{name.capitalize()} the route's rollout in progress."
    rollout.command(name)(command)


for _name in ("pause", "resume", "promote", "abort"):
    _move(_name)


@rollout.command("status")
def status(
    route: Route, tenant: Tenant = None, url: Url = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """The route's current (or last) rollout and its latest decision."""
    path = RoutesClient.route_path(route, "rollout", tenant)
    _show(call(url, api_key, lambda client: client.get(path)))


def rollback(
    route: Route,
    reason: Reason,
    to: Annotated[
        str | None,
        typer.Option("--to", help="A version that has been stable before. Default: the previous."),
    ] = None,
    override_gate: Annotated[
        bool,
        typer.Option(
            "--override-gate",
            help="Emergency, admin only: serve a version that has never been stable, "
            "skipping the release gate (audited, marked on the timeline).",
        ),
    ] = False,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Serve an earlier stable version from the next request on; a rollout in progress ends.

    Going forward is `rollout start`, through the gate."""
    body: dict[str, Any] = {"to": to, "reason": reason}
    if override_gate:
        body["override_gate"] = True
    data = _send(url, api_key, route, "rollback", body, tenant)
    note = " (release gate overridden)" if data.get("override_gate") else ""
    Console(highlight=False).print(
        f"{escape(route)}: stable is now v{data['stable_version']}{note}"
    )


def attest(
    route: Route,
    version: Annotated[str, typer.Argument(help="e.g. v2")],
    kind: Annotated[str, typer.Option(help="eval | redteam | approval | changelog")],
    result: Annotated[str, typer.Option(help="pass | fail")],
    note: Annotated[str | None, typer.Option()] = None,
    link: Annotated[str | None, typer.Option("--url", help="Where the evidence is.")] = None,
    tenant: Tenant = None,
    server: Server = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Record evidence on a version, attributed to the owner of the key used."""
    body = {"kind": kind, "result": result, "note": note, "url": link}
    data = _send(server, api_key, route, f"versions/{version}/attestations", body, tenant)
    Console(highlight=False).print(
        f"{escape(route)} v{data['version']}: {data['kind']} {data['result']} by {data['by']}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(rollout, name="rollout")
    app.command("rollback")(rollback)
    app.command("attest")(attest)
