"""The one way a command talks to a running trimtab: build the client, make the calls, and
end the command with the same `error: ...` line (a gate refusal adds the commands that
satisfy it) and exit code 1 whatever went wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from trimtab.client import Client, TrimtabError

T = TypeVar("T")
# puts a refusal in the CLI's words; None keeps the server's message
Advice = Callable[[TrimtabError], str | None]


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr; the caller raises the returned exit (code 1)."""
    # soft wrap: a long path or key stays on its line, whole, to copy (the terminal wraps it)
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[red]error:[/red] {escape(message)}"
    )
    return typer.Exit(1)


def request_id(exc: TrimtabError) -> str:
    """` (request id: req_...)` when the server answered, to quote in a report."""
    return f" (request id: {exc.request_id})" if exc.request_id else ""


def file_refused(file: object, code: str, outcome: str) -> Advice:
    """Advice for a file the server refused with `code`: each of its problems on a line of
    its own, after `FILE: N problem(s), <outcome>`."""

    def advice(exc: TrimtabError) -> str | None:
        if exc.code != code:
            return None
        said = exc.message
        if exc.request_id:
            said = said.removesuffix(f" (request id: {exc.request_id})")
        problems = said.split("\n")
        return f"{file}: {len(problems)} problem(s), {outcome}{request_id(exc)}\n" + "\n".join(
            problems
        )

    return advice


def message(exc: TrimtabError, advice: Advice | None = None) -> str:
    """The server's refusal as a person on a terminal needs it: the server's message, or,
    where that is written for HTTP callers, what to type instead."""
    said = advice(exc) if advice is not None else None
    if said is not None:
        return said
    if exc.code == "missing_api_key":
        return f"{exc.status}: no API key: set TRIMTAB_API_KEY or pass --api-key{request_id(exc)}"
    return str(exc)


def call(
    url: str,
    api_key: str | None,
    request: Callable[[Client], T],
    advice: Advice | None = None,
) -> T:
    """Run `request` with a client of the server at `url`; a refusal, an unreachable server
    or a URL that is not one ends the command with its message (`advice` may reword a
    refusal)."""
    try:
        client = Client(url, api_key)
    except httpx.InvalidURL as exc:  # e.g. "http://[::1": httpx refuses it before any request
        raise fail(f"--url {url}: not a URL: {exc}") from None
    try:
        with client:
            return request(client)
    except TrimtabError as exc:
        raise fail(message(exc, advice)) from None
