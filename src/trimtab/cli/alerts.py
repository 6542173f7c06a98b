"""`trimtab alerts ...`: list, show and acknowledge alerts; silence them, against a running
trimtab (docs/alerts.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call, fail
from trimtab.cli.options import DEFAULT_URL, ApiKey, Url
from trimtab.cli.tables import table
from trimtab.durations import parse_duration

alerts = typer.Typer(
    help="Alerts on a running trimtab: list, show, ack; silences.", no_args_is_help=True
)

Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
Message = Annotated[str, typer.Option("--message", "-m", help="Why (recorded and audited).")]
_COLOURS = {"page": "red", "ticket": "yellow", "info": "cyan"}
_STATES = ("open", "firing", "acknowledged", "resolved", "all")
_SEVERITIES = ("page", "ticket", "info", "all")


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _when(value: str | None) -> str:
    return "-" if not value else value.replace("+00:00", "Z")[:19].replace("T", " ")


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


@alerts.command("list")
def list_alerts(
    state: Annotated[
        str, typer.Option("--state", help="open, firing, acknowledged, resolved or all.")
    ] = "all",
    severity: Annotated[str, typer.Option("--severity", help="page, ticket, info or all.")] = "all",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Alerts, newest first."""
    if state not in _STATES:
        raise fail(f"--state {state}: expected one of {', '.join(_STATES)}")
    if severity not in _SEVERITIES:
        raise fail(f"--severity {severity}: expected one of {', '.join(_SEVERITIES)}")
    rows = call(url, api_key, lambda c: c.alerts(state=state, severity=severity, limit=limit))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    out = _out()
    if not rows:
        out.print("no alerts")
        return
    shown = table(
        "id", "severity", "state", "started", "count", "summary", "labels", right=("id", "count")
    )
    for a in rows:
        colour = _COLOURS.get(a["severity"], "white")
        state_text = a["state"] + (" (silenced)" if a["silenced"] else "")
        shown.add_row(
            str(a["id"]),
            f"[{colour}]{a['severity']}[/{colour}]",
            escape(state_text),
            _when(a["started_at"]),
            str(a["count"]),
            escape(a["summary"]),
            escape(_labels(a["labels"])),
        )
    out.print(shown)


@alerts.command("show")
def show(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """One alert: its state, labels, evidence, owner, and what each sink was sent."""
    a: dict[str, Any] = call(url, api_key, lambda c: c.alert(alert_id))
    if as_json:
        print(json.dumps(a, indent=2))
        return
    out = _out()
    colour = _COLOURS.get(a["severity"], "white")
    out.print(
        f"[bold]alert {a['id']}[/bold] [{colour}]{a['severity']}[/{colour}] {a['state']}"
        + (" [dim](silenced)[/dim]" if a["silenced"] else "")
    )
    out.print(escape(a["summary"]))
    for name, value in (
        ("dedup key", a["dedup_key"]),
        ("source", a["source"]),
        ("labels", _labels(a["labels"])),
        ("owner", a["owner"] or "-"),
        ("on call", a["on_call"] or "-"),
        ("started", _when(a["started_at"])),
        ("last seen", f"{_when(a['updated_at'])} ({a['count']} signals)"),
        ("acknowledged", f"{_when(a['acked_at'])} {a['acked_by'] or ''} {a['ack_comment'] or ''}"),
        ("resolved", _when(a["resolved_at"])),
    ):
        out.print(f"  {name:<13} {escape(str(value)).rstrip()}")
    if a["details"]:
        out.print("  details")
        for key, value in sorted(a["details"].items()):
            out.print(f"    {escape(key)}: {escape(json.dumps(value))}")
    if a["deliveries"]:
        shown = table(
            "sink", "event", "status", "attempts", "delivered", "last error", right=("attempts",)
        )
        for d in a["deliveries"]:
            shown.add_row(
                escape(d["sink"]),
                d["event"],
                d["status"],
                str(d["attempts"]),
                _when(d["delivered_at"]),
                escape(d["last_error"] or "-"),
            )
        out.print(shown)
    else:
        out.print("  [dim]sent nowhere[/dim]")


@alerts.command("ack")
def ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    message: Message,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Acknowledge a firing alert (PagerDuty hears `acknowledge`)."""
    a = call(url, api_key, lambda c: c.ack_alert(alert_id, message))
    _out().print(f"alert {a['id']}: {a['state']} by {escape(a['acked_by'] or '-')}")


@alerts.command("silence")
def silence(
    match: Annotated[
        list[str],
        typer.Option("--match", help="label=value, label!=value or label=~regex; repeatable."),
    ],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    message: Message,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Suppress delivery of alerts matching every --match (they are still recorded)."""
    if parse_duration(duration) is None:
        raise fail(f"--for {duration}: expected a duration like 30m, 2h or 1d")
    s = call(url, api_key, lambda c: c.silence(list(match), duration, message))
    _out().print(
        f"silence {s['id']}: {escape(', '.join(s['matchers']))} until {_when(s['ends_at'])}"
    )


@alerts.command("silences")
def silences(
    every: Annotated[bool, typer.Option("--all", help="Ended silences too.")] = False,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Silences (active ones unless --all)."""
    rows = call(url, api_key, lambda c: c.silences(every=every))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    out = _out()
    if not rows:
        out.print("no silences")
        return
    shown = table("id", "matchers", "ends", "active", "by", "comment", right=("id",))
    for s in rows:
        shown.add_row(
            str(s["id"]),
            escape(", ".join(s["matchers"])),
            _when(s["ends_at"]),
            "yes" if s["active"] else "no",
            escape(s["created_by"] or "-"),
            escape(s["comment"]),
        )
    out.print(shown)


@alerts.command("unsilence")
def unsilence(
    silence_id: Annotated[int, typer.Argument(help="The silence's id.")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """End a silence now."""
    s = call(url, api_key, lambda c: c.unsilence(silence_id))
    _out().print(f"silence {s['id']}: ended at {_when(s['ends_at'])}")


def register(app: typer.Typer) -> None:
    """Add `alerts ...` to the `trimtab` command."""
    app.add_typer(alerts, name="alerts")
