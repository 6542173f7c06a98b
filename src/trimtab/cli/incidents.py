"""`trimtab incident ...`: open, list, show, note, contain, ack, mitigate, resolve,
postmortem, rule and close incidents on a running trimtab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call, fail
from trimtab.cli.options import DEFAULT_URL, ApiKey, TenantFilter, Url
from trimtab.cli.tables import table
from trimtab.client._incidents import Incident, TimelineEntry
from trimtab.durations import clock

incident = typer.Typer(help="Incidents on a running trimtab.", no_args_is_help=True)

Id = Annotated[str, typer.Argument(help="The incident's id (inc_...).")]
Message = Annotated[str, typer.Option("--message", "-m", help="Why, in a sentence.")]
OptionalMessage = Annotated[str | None, typer.Option("--message", "-m", help="Why, in a sentence.")]

_CONTAINMENTS = {
    "rollback": "rollback",
    "pause": "pause_rollout",
    "revoke-key": "revoke_key",
    "block-tenant": "block_tenant",
    "switch-model": "switch_model",
    "restore-model": "restore_model",
}
_SEVERITY_COLOURS = {1: "bold red", 2: "red", 3: "yellow", 4: "dim"}
_STATE_COLOURS = {"open": "red", "mitigated": "yellow", "resolved": "green", "closed": "dim"}


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _sev(value: int) -> str:
    colour = _SEVERITY_COLOURS.get(value, "")
    return f"[{colour}]SEV{value}[/{colour}]" if colour else f"SEV{value}"


def _state(value: str) -> str:
    colour = _STATE_COLOURS.get(value, "")
    return f"[{colour}]{value}[/{colour}]" if colour else value


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else clock(seconds)


def _share(value: Any) -> str:
    return "n/a" if value is None else f"{value * 100:.3g} %"


def _brief(i: Incident, out: Console) -> None:
    where = ", ".join(i["routes"] or i["models"] or i["tenants"]) or "-"
    out.print(
        f"[bold]{escape(i['id'])}[/bold] {_sev(i['severity'])} {escape(i['type'])} "
        f"{_state(i['state'])} on {escape(where)}: {escape(i['title'])}"
    )


def _show(i: Incident, out: Console) -> None:
    _brief(i, out)
    out.print(f"  tenant: {escape(i['tenant'] or '(shared)')}")
    out.print(f"  customer impact: {i['customer_impact']}")
    if i.get("summary"):
        out.print(f"  summary: {escape(i['summary'] or '')}")
    out.print(f"  opened: {i['opened_at']} by {escape(i['opened_by'] or '-')}")
    for label, key in (
        ("first bad minute", "first_bad_at"),
        ("detected", "detected_at"),
        ("acknowledged", "acknowledged_at"),
        ("mitigated", "mitigated_at"),
        ("resolved", "resolved_at"),
        ("closed", "closed_at"),
    ):
        value = i.get(key)
        out.print(f"  {label}: {value or '-'}")
    d = i["durations_s"]
    out.print(
        f"  time to detect {_duration(d['detect'])}, acknowledge {_duration(d['acknowledge'])}, "
        f"mitigate {_duration(d['mitigate'])}, resolve {_duration(d['resolve'])}; "
        f"impact {_duration(d['impact'])}"
    )
    impact = i.get("impact")
    if impact:
        out.print(
            f"  impact: {impact['failed']} of {impact['requests']} requests failed "
            f"({_share(impact['traffic_share'])}), {impact['tenants_failed']} of "
            f"{impact['tenants']} tenants, {impact['users_failed']} users, "
            f"{impact['spend_usd']:.4f} USD spent; blast radius "
            f"{impact['blast_radius'] or 'not measured'}"
        )
    for r in i["rules"]:
        out.print(f"  rule: {r['kind']} {escape(r['ref'])}: {escape(r['message'])}")
    for missing in i["missing_to_close"]:
        out.print(f"  [dim]to close: {escape(missing)}[/dim]")


def _timeline(entries: list[TimelineEntry], out: Console) -> None:
    shown = table("time", "source", "what", "by")
    for e in entries:
        shown.add_row(
            e["at"][:19].replace("T", " "),
            e["source"],
            escape(e["summary"]),
            escape(e["actor"] or ""),
        )
    out.print(shown)


@incident.command("open")
def open_incident(
    type_: Annotated[
        str,
        typer.Option(
            "--type",
            help="toxic_output, pii_leak, cross_tenant_leak, runaway_agent_loop, "
            "vendor_outage, quality_regression, cost_spike or other.",
        ),
    ],
    message: Message,
    route: Annotated[
        list[str] | None, typer.Option("--route", help="An affected route (repeatable).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="An affected model (repeatable).")
    ] = None,
    affected_tenant: Annotated[
        list[str] | None,
        typer.Option("--affected-tenant", help="An affected tenant (repeatable)."),
    ] = None,
    sev: Annotated[
        int | None,
        typer.Option("--sev", min=1, max=4, help="1 (worst) to 4; absent: the matrix's."),
    ] = None,
    impact: Annotated[
        str | None,
        typer.Option("--impact", help="Customer impact: low, medium, high, critical."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="A short title.")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Open an incident; its first bad minute, impact and severity (unless --sev) are
    measured from the rollups."""
    made = call(
        url,
        api_key,
        lambda c: c.open_incident(
            type_, message, routes=route, models=model, tenants=affected_tenant,
            severity=sev, customer_impact=impact, title=title,
        ),
    )  # fmt: skip
    _show(made, _out())


@incident.command("list")
def list_incidents(
    state: Annotated[
        str | None, typer.Option("--state", help="open, mitigated, resolved or closed.")
    ] = None,
    route: Annotated[str | None, typer.Option("--route", help="Only this route's.")] = None,
    tenant: TenantFilter = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Incidents, newest first."""
    found = call(url, api_key, lambda c: c.incidents(state=state, route=route, tenant=tenant))
    out = _out()
    if not found:
        out.print("no incidents")
        return
    shown = table("id", "sev", "type", "state", "routes", "opened", "title")
    for i in found:
        shown.add_row(
            escape(i["id"]),
            _sev(i["severity"]),
            escape(i["type"]),
            _state(i["state"]),
            escape(", ".join(i["routes"]) or "-"),
            i["opened_at"][:19].replace("T", " "),
            escape(i["title"]),
        )
    out.print(shown)


@incident.command("show")
def show(id_: Id, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The incident, its impact measured now, its durations and its timeline."""

    def both(c: Any) -> tuple[Incident, list[TimelineEntry]]:
        return c.incident(id_), c.incident_timeline(id_)

    found, entries = call(url, api_key, both)
    out = _out()
    _show(found, out)
    _timeline(entries, out)


@incident.command("note")
def note(id_: Id, message: Message, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Add a note to the incident's timeline."""
    event = call(url, api_key, lambda c: c.incident_note(id_, message))
    _out().print(f"noted at {event['at']}")


@incident.command("severity")
def set_severity(
    id_: Id,
    sev: Annotated[int, typer.Option("--sev", min=1, max=4, help="1 (worst) to 4.")],
    message: Message,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Change the incident's severity, saying why."""
    changed = call(url, api_key, lambda c: c.set_incident_severity(id_, sev, message))
    _brief(changed, _out())


def _move(id_: str, action: str, message: str | None, url: str, api_key: str | None) -> None:
    fields = {"message": message} if message else {}
    acted = call(url, api_key, lambda c: c.incident_action(id_, action, **fields))
    _brief(acted["incident"], _out())


@incident.command("ack")
def ack(id_: Id, message: OptionalMessage = None, url: Url = DEFAULT_URL,
        api_key: ApiKey = None) -> None:  # fmt: skip
    """Acknowledge the incident (its time to acknowledge stops)."""
    _move(id_, "acknowledge", message, url, api_key)


@incident.command("mitigate")
def mitigate(id_: Id, message: OptionalMessage = None, url: Url = DEFAULT_URL,
             api_key: ApiKey = None) -> None:  # fmt: skip
    """Mark the incident mitigated (its impact has stopped; the cause may remain)."""
    _move(id_, "mitigate", message, url, api_key)


@incident.command("resolve")
def resolve(id_: Id, message: OptionalMessage = None, url: Url = DEFAULT_URL,
            api_key: ApiKey = None) -> None:  # fmt: skip
    """Mark the incident resolved."""
    _move(id_, "resolve", message, url, api_key)


@incident.command("contain")
def contain(
    id_: Id,
    action: Annotated[
        str,
        typer.Argument(
            help="rollback, pause, revoke-key, block-tenant, switch-model or restore-model."
        ),
    ],
    message: Message,
    route: Annotated[
        str | None, typer.Option("--route", help="The route (default: the incident's only).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="rollback: the version (default: previous).")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="revoke-key: the key id.")] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="block-tenant: whose keys.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="switch-model, restore-model (default: the incident's only)."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Contain from the incident, audited and on its timeline: roll the route back, pause
    its rollout, revoke a key, revoke every key of a tenant, switch a model to its fallbacks
    on every gateway, or restore it."""
    chosen = _CONTAINMENTS.get(action)
    if chosen is None:
        raise fail(f"unknown containment '{action}' (one of: {', '.join(_CONTAINMENTS)})")
    fields = {
        "message": message,
        "route": route,
        "to": to,
        "key_id": key,
        "tenant": tenant,
        "model": model,
    }
    given = {k: v for k, v in fields.items() if v is not None}
    acted = call(url, api_key, lambda c: c.incident_action(id_, chosen, **given))
    out = _out()
    result = ", ".join(f"{k}={v}" for k, v in acted["result"].items())
    out.print(f"{action}: {escape(result)}")
    _brief(acted["incident"], out)


@incident.command("postmortem")
def postmortem(
    id_: Id,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the markdown to this file.")
    ] = None,
    edited: Annotated[
        Path | None,
        typer.Option("--from", help="Record this edited markdown file instead of a draft."),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Record the postmortem (a draft from the incident's record, or --from an edited
    file) and print it, or write it to -o."""
    text = None
    if edited is not None:
        try:
            text = edited.read_text()
        except OSError as exc:
            raise fail(f"{edited}: {exc.strerror or exc}") from None
    made = call(url, api_key, lambda c: c.record_postmortem(id_, text))
    if output is None:
        print(made["markdown"], end="")
        return
    try:
        output.write_text(made["markdown"])
    except OSError as exc:
        raise fail(f"{output}: {exc.strerror or exc}") from None
    _out().print(f"postmortem of {escape(id_)} recorded and written to {escape(str(output))}")


@incident.command("rule")
def rule(
    id_: Id,
    kind: Annotated[
        str,
        typer.Option("--kind", help="slo, guardrail, limit, dataset_case or gate_requirement."),
    ],
    message: Message,
    ref: Annotated[
        str | None, typer.Option("--ref", help="What the rule is: its name or place.")
    ] = None,
    from_failed: Annotated[
        bool,
        typer.Option(
            "--from-failed", help="dataset_case: push the incident's failed requests as a dataset."
        ),
    ] = False,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="--from-failed: the dataset's name.")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Record the reusable rule this incident bought (closing needs one)."""
    added = call(
        url,
        api_key,
        lambda c: c.add_incident_rule(
            id_, kind, message, ref=ref, from_failed=from_failed, dataset=dataset
        ),
    )
    r = added["rule"]
    extra = ""
    if r["detail"] and "items" in r["detail"]:
        extra = f" ({r['detail']['items']} failed requests)"
    _out().print(f"rule {r['id']}: {r['kind']} {escape(r['ref'])}{escape(extra)}")


@incident.command("close")
def close(id_: Id, message: OptionalMessage = None, url: Url = DEFAULT_URL,
          api_key: ApiKey = None) -> None:  # fmt: skip
    """Close a resolved incident that has its postmortem and a rule."""
    closed = call(url, api_key, lambda c: c.close_incident(id_, message))
    _brief(closed, _out())


def register(app: typer.Typer) -> None:
    """Add `incident ...` to the `trimtab` command."""
    app.add_typer(incident, name="incident")
