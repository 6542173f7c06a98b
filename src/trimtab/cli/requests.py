"""`trimtab requests`, `request` and `summary`: the recorded traffic, from a terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from trimtab.cli.calls import call, fail
from trimtab.cli.options import DEFAULT_URL, ApiKey, TenantFilter, Url
from trimtab.cli.tables import table, when
from trimtab.client import Client
from trimtab.client.types import RequestRecord
from trimtab.durations import parse_duration


def since_time(text: str | None, now: datetime | None = None) -> str | None:
    """`15m`, `1h`, `7d` ago as ISO 8601; an ISO time or Unix seconds as they are."""
    if text is None:
        return None
    ago = parse_duration(text.strip())
    if ago is None:
        return text
    try:
        return ((now or datetime.now(UTC)) - ago).isoformat(timespec="seconds")
    except OverflowError:  # before year 1: the server refuses it with its own message
        return text


def _looks_like_time(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text)
        return True
    except ValueError:
        return False


def _ms(value: Any) -> str:
    return "" if value is None else f"{value:.0f}"


def _cost(value: Any) -> str:
    return "" if value is None else f"{value:.6f}"


def _tokens(record: RequestRecord) -> str:
    i, o = record.get("gen_ai.usage.input_tokens"), record.get("gen_ai.usage.output_tokens")
    return "" if i is None and o is None else f"{i or 0}/{o or 0}"


def requests(
    route: Annotated[str | None, typer.Option(help="Only this route's requests.")] = None,
    version: Annotated[str | None, typer.Option(help="Only this route version (2 or v2).")] = None,
    status: Annotated[
        str | None, typer.Option(help="An HTTP status code, 'error' or 'ok'.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="The model asked for.")] = None,
    provider: Annotated[str | None, typer.Option(help="The configured provider.")] = None,
    feature: Annotated[str | None, typer.Option(help="The feature tag.")] = None,
    user: Annotated[str | None, typer.Option(help="The user tag.")] = None,
    session: Annotated[str | None, typer.Option(help="The session tag.")] = None,
    text: Annotated[
        str | None, typer.Option(help="Text in the stored request or answer body (any case).")
    ] = None,
    tenant: TenantFilter = None,
    since: Annotated[
        str | None, typer.Option(help="Since: 15m, 1h, 7d ago, an ISO 8601 time or Unix seconds.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Until: as --since.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List recorded requests, newest first (`trimtab request ID` shows one in full)."""
    if since is not None and since_time(since) == since and not _looks_like_time(since):
        raise fail(f"--since {since}: give 15m, 1h, 7d, an ISO 8601 time or Unix seconds")

    def fetch(client: Client) -> list[RequestRecord]:
        rows = client.iter_requests(
            route=route, version=version, status=status, model=model, provider=provider,
            feature=feature, user=user, session=session, tenant=tenant, text=text,
            since=since_time(since), until=since_time(until), limit=min(limit, 1000),
        )  # fmt: skip
        return list(islice(rows, limit))

    rows = call(url, api_key, fetch)
    shown = table(
        "started (UTC)", "id", "model", "status", "ms", "tokens", "cost $", "route", "feature"
    )
    for r in rows:
        code = r["http.response.status_code"]
        where = " ".join(str(part) for part in (r.get("route"), r.get("version")) if part)
        shown.add_row(
            when(r["started_at"]),
            r["id"],
            escape(r.get("gen_ai.request.model") or ""),
            f"[red]{code}[/red]" if code >= 400 else str(code),
            _ms(r.get("latency_ms")),
            _tokens(r),
            _cost(r.get("cost_usd")),
            escape(where),
            escape(r.get("feature") or ""),
        )
    out = Console(highlight=False)
    out.print(shown)
    if not rows:
        out.print("no requests match")


def request(
    request_id: Annotated[str, typer.Argument(help="The request's id (x-trimtab-request-id).")],
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Show one recorded request with its request and response bodies (JSON)."""
    record = call(url, api_key, lambda client: client.request(request_id))
    Console(highlight=False).print_json(data=record)


def summary(
    window: Annotated[str, typer.Option(help="The last 15m, 1h, 24h, 7d (up to 31d).")] = "1h",
    group_by: Annotated[
        str,
        typer.Option(help="model, provider, tenant, feature, status, route or version."),
    ] = "model",
    tenant: TenantFilter = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Per group: requests, errors, latency percentiles, tokens and cost over a window."""
    data = call(url, api_key, lambda c: c.summary(window=window, group_by=group_by, tenant=tenant))
    shown = table(
        group_by, "requests", "errors", "error %", "p50 ms", "p95 ms", "p99 ms",
        "ttft p50", "in tok", "out tok", "cost $",
    )  # fmt: skip
    rows: list[tuple[str, dict[str, Any]]] = [
        (str(g.get(group_by) if g.get(group_by) is not None else "(none)"), g)
        for g in data["groups"]
    ]
    if len(rows) != 1:
        rows.append(("total", data["total"]))
    for name, g in rows:
        latency, ttft = g.get("latency_ms") or {}, g.get("ttft_ms") or {}
        shown.add_row(
            escape(name),
            str(g["count"]),
            str(g["errors"]),
            f"{100 * g['error_rate']:.1f}",
            _ms(latency.get("p50")),
            _ms(latency.get("p95")),
            _ms(latency.get("p99")),
            _ms(ttft.get("p50")),
            str(g["input_tokens"]),
            str(g["output_tokens"]),
            _cost(g["cost_usd"]),
        )
    out = Console(highlight=False)
    out.print(f"last {escape(data['window'])}, by {escape(group_by)}")
    out.print(shown)


def register(app: typer.Typer) -> None:
    """Add requests, request and summary to the `trimtab` command."""
    app.command("requests")(requests)
    app.command("request")(request)
    app.command("summary")(summary)
