"""`trimtab rollout ...`, `trimtab rollback` and `trimtab attest` against a running trimtab."""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trimtab.cli.calls import Advice, call
from trimtab.cli.options import DEFAULT_URL, ApiKey, Tenant, Url
from trimtab.cli.routes import Route
from trimtab.cli.tables import table, when
from trimtab.client import Client, TrimtabError
from trimtab.client.types import Rollout, RolloutForecast
from trimtab.durations import spoken
from trimtab.rollouts.eval_evidence import RUN_BACKED_TIER

Reason = Annotated[str, typer.Option("--reason", "-r", help="Why: it goes on the timeline.")]

rollout = typer.Typer(help="Move a route's traffic to a candidate version, or stop doing so.")

# the controller's decisions that end a rollout; any other last decision of an ended
# rollout was overtaken by a person (a rollback, an abort, a promotion)
_ENDING = {"rolled_back": "rollback", "promoted": "promote"}
_ACTIVE = ("running", "paused")


def _show(data: Rollout, ended_by: dict[str, Any] | None = None) -> None:
    out = Console(highlight=False)
    out.print(
        f"rollout {data['id']} of {escape(data['route'])}: v{data['stable_version']} -> "
        f"v{data['candidate_version']}, [bold]{data['status']}[/bold], stage "
        f"{data['stage'] + 1}/{len(data['stages'])} ({data['percent']:g} %)"
    )
    decision = data.get("last_decision") or {}
    if ended_by is not None:
        why = f": {ended_by['reason']}" if ended_by.get("reason") else ""
        out.print(
            f"  {escape(ended_by['kind'])} at {when(ended_by['at'])} by "
            f"{escape(ended_by.get('actor') or '?')}{escape(why)}"
        )
        if decision:
            out.print(f"  before that, the controller's last decision ({decision.get('action')}):")
    indent = "    " if ended_by is not None else "  "
    for reason in decision.get("reasons", []):
        out.print(f"{indent}{escape(reason)}")
    if decision.get("metrics"):
        out.print(_metrics(decision))


def _overtaken(data: Rollout) -> bool:
    """An ended rollout whose last controller decision is not what ended it."""
    decision = data.get("last_decision") or {}
    return data["ended_at"] is not None and decision.get("action") != _ENDING.get(data["status"])


def _ending_event(client: Client, data: Rollout, tenant: str | None) -> dict[str, Any] | None:
    """The timeline's event that ended the rollout (who, when, why)."""
    ending = None
    for event in client.timeline(data["route"], tenant=tenant):
        detail = event.get("detail") or {}
        if detail.get("rollout") == data["id"] and event["kind"] != "decision":
            ending = dict(event)
    return ending


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


_METRIC_COLUMNS = ("metric", "verdict", "stable", "candidate", "ratio", "interval", "margin")


def _metrics(decision: dict[str, Any]) -> Table:
    """The latest decision's verdicts: the values, candidate/stable and its interval."""
    seen = decision.get("requests") or {}
    shown = table(
        *_METRIC_COLUMNS,
        right=_METRIC_COLUMNS[2:],
        title=f"{decision.get('action')} at {decision.get('at', '?')[:19]}: "
        f"{seen.get('candidate', 0)} canary and {seen.get('stable', 0)} stable requests so far",
        pad_edge=True,  # indented under the rollout's lines
    )
    for m in decision["metrics"]:
        interval = f"[{_number(m.get('lower'))}, {_number(m.get('upper'))}]"
        shown.add_row(
            str(m.get("metric")),
            str(m.get("verdict")),
            _number(m.get("stable_value")),
            _number(m.get("candidate_value")),
            _number(m.get("estimate")),
            interval,
            _number(m.get("margin")),
        )
    return shown


# what a gate refusal names as missing -> the attestation that supplies it
_EVIDENCE = (
    ("a changelog", "changelog", ' --note "what changed"'),
    ("a passing eval", "eval", ' --note "the result" --link URL'),
    ("an approval", "approval", ""),
    ("a red-team", "redteam", ' --note "the sign-off" --link URL'),
)


def gate_advice(route: str, to: str, tenant: str | None) -> Advice:
    """A gate refusal with the `trimtab attest` commands that would satisfy it."""

    def advice(exc: TrimtabError) -> str | None:
        if exc.code != "gate_refused":
            return None
        needs = exc.message.split(" still needs ", 1)[-1]
        where = "" if tenant is None else f" --tenant {shlex.quote(tenant)}"
        lines = [str(exc), "record the evidence, then start again:"]
        tier = re.search(r" is risk tier (\d+):", exc.message)
        for phrase, kind, extra in _EVIDENCE:
            if phrase in needs and kind == "eval" and tier and int(tier[1]) >= RUN_BACKED_TIER:
                # from tier 2 up only a run writes it (rollouts/eval_evidence.py)
                lines.append(
                    f"  trimtab eval run SUITE --version {shlex.quote(to)} --baseline stable "
                    "--gate   # each of the route's suites tagged golden and safety"
                )
            elif phrase in needs:
                command = (
                    f"  trimtab attest {shlex.quote(route)} {shlex.quote(to)} --kind {kind} "
                    f"--result pass{extra}{where}"
                )
                if kind == "approval":
                    command += "   # another person's key"
                lines.append(command)
        return "\n".join(lines)

    return advice


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
    started = call(
        url,
        api_key,
        lambda c: c.start_rollout(route, to, plan=plan, reason=reason, tenant=tenant),
        gate_advice(route, to, tenant),
    )
    _show(started)
    if "forecast" in started:
        _show_forecast(started["forecast"])


def _show_forecast(data: RolloutForecast) -> None:
    out = Console(highlight=False, soft_wrap=True)
    base = data["baseline"]
    out.print(
        f"forecast for plan {escape(data['plan'])}: {data['requests_per_s']:.3g} requests/s "
        f"({base['requests']:,} requests in the last {spoken(base['seconds'])}), the "
        "candidate taken to match stable"
    )
    numbers = ("percent", "canary/s", "for", "canary requests")
    rows = table("stage", *numbers, "then", right=numbers)
    for st in data["stages"]:
        rows.add_row(
            str(st["stage"] + 1), f"{st['percent']:g} %", f"{st['canary_per_s']:.3g}",
            spoken(st["seconds"]), f"{st['canary_requests']:,}",
            f"{st['outcome']}: {escape(st['reason'])}",
        )  # fmt: skip
    if data["stages"]:
        out.print(rows)
    after, canary = data["promote_after_s"], data["promote_canary_requests"]
    if after is not None and canary is not None:
        out.print(f"  expected to promote after ~{spoken(after)}, ~{canary:,} canary requests")
    for warning in data["warnings"]:
        out.print(f"  [yellow]warning:[/yellow] {escape(warning)}")
    out.print(f"  [dim]{escape(data['method'])}; a projection, not a promise[/dim]")


@rollout.command("forecast")
def forecast(
    route: Route,
    plan: Annotated[str, typer.Option(help="A plan from the server's config.")] = "default",
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """What a plan is expected to do on the route's recent traffic, before you start it."""
    _show_forecast(call(url, api_key, lambda c: c.forecast(route, plan=plan, tenant=tenant)))


def _move(name: str) -> None:
    def command(
        route: Route,
        reason: Reason,
        tenant: Tenant = None,
        url: Url = DEFAULT_URL,
        api_key: ApiKey = None,
    ) -> None:
        moves = {"pause": Client.pause, "resume": Client.resume}
        moves |= {"promote": Client.promote, "abort": Client.abort}
        _show(call(url, api_key, lambda c: moves[name](c, route, reason, tenant=tenant)))

    command.__doc__ = f"{name.capitalize()} the route's rollout in progress."
    rollout.command(name)(command)


for _name in ("pause", "resume", "promote", "abort"):
    _move(_name)


@rollout.command("status")
def status(
    route: Route, tenant: Tenant = None, url: Url = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """The route's current (or last) rollout and its latest decision; for a rollout a
    person ended, who ended it, when and why."""

    def read(client: Client) -> tuple[Rollout, dict[str, Any] | None]:
        data = client.rollout(route, tenant=tenant)
        ending = _ending_event(client, data, tenant) if _overtaken(data) else None
        if ending is not None and ending.get("actor") == "controller":
            ending = None  # the controller ended it (a promotion follows an "advance")
        return data, ending

    _show(*call(url, api_key, read))


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

    def work(client: Client) -> tuple[int | None, Rollout | None, Any]:
        before = client.route(route, tenant=tenant).get("stable_version")
        try:
            active: Rollout | None = client.rollout(route, tenant=tenant)
        except TrimtabError as exc:
            if exc.status != 404:
                raise
            active = None
        if active is not None and active["status"] not in _ACTIVE:
            active = None
        done = client.rollback(route, reason, to=to, override_gate=override_gate, tenant=tenant)
        return before, active, done

    before, active, data = call(url, api_key, work)
    note = " (release gate overridden)" if data.get("override_gate") else ""
    now = data["stable_version"]
    if before == now:
        said = f"{escape(route)}: stable stays v{now}, as it was{note}"
    else:
        said = f"{escape(route)}: stable is now v{now} (was v{before}){note}"
    if active is not None:
        said += f"; rollout {active['id']} of v{active['candidate_version']} rolled back"
    Console(highlight=False).print(said)


def attest(
    route: Route,
    version: Annotated[str, typer.Argument(help="e.g. v2")],
    kind: Annotated[str, typer.Option(help="eval | redteam | approval | changelog")],
    result: Annotated[str, typer.Option(help="pass | fail")],
    note: Annotated[str | None, typer.Option()] = None,
    link: Annotated[
        str | None, typer.Option("--link", help="Where the evidence is (a CI run, a document).")
    ] = None,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    # kept hidden because tests/cli/test_rollouts.py (and older scripts) still pass it
    server: Annotated[
        str | None, typer.Option("--server", hidden=True, help="Deprecated: --url.")
    ] = None,
) -> None:
    """Record evidence on a version, attributed to the owner of the key used."""
    if server is not None:  # the old name of --url, from when --url was the evidence's
        Console(stderr=True, highlight=False).print(
            "warning: --server is deprecated: the server is --url (the evidence is --link)"
        )
        url = server
    data = call(
        url,
        api_key,
        lambda c: c.attest(
            route, version, kind=kind, result=result, note=note, url=link, tenant=tenant
        ),
    )
    Console(highlight=False).print(
        f"{escape(route)} v{data['version']}: {data['kind']} {data['result']} "
        f"by {escape(str(data['by']))}"
    )


def register(app: typer.Typer) -> None:
    """Add `rollout ...`, rollback and attest to the `trimtab` command."""
    app.add_typer(rollout, name="rollout")
    app.command("rollback")(rollback)
    app.command("attest")(attest)
