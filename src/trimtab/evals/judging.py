"""A judge's calls: the answer to judge sent to `route:JUDGE` through a gateway's own
`/v1/chat/completions`, `repeats` times one after another, each reply read into a verdict
(evals/judge.py). The eval runner calls it over HTTP with the run's tags; online scoring
calls the server's own gateway in process (app.py) with `eval:online:SUITE`.

A call that fails (no answer, an HTTP error, a reply without choices) is a verdict with
an error naming the request id, never an exception: the scorer then reports an error on
the item, never a silent 0.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from trimtab.evals import judge
from trimtab.evals.datasets import Item
from trimtab.evals.scorers import Judge
from trimtab.evals.scoring import stored_text


def error_text(response: httpx.Response) -> str:
    """An error answer of the gateway as one line, with its request id."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = str(message) if message else (response.text.strip()[:300] or response.reason_phrase)
    rid = response.headers.get("x-trimtab-request-id")
    said = f"HTTP {response.status_code}: {text}" + (f" (request {rid})" if rid else "")
    return stored_text(said)


def answer_text(data: Any) -> str:
    """The text of a chat completion's first choice; ValueError without one."""
    try:
        content = data["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ValueError("the answer has no choices[0].message") from None
    return stored_text(content) if isinstance(content, str) else ""


def judge_body(spec: Judge, item: Item, output: str) -> dict[str, Any]:
    """The request a judge of `output` is: its route, with the judge's variables."""
    return {
        "model": judge.ROUTE_PREFIX + spec.judge_route,
        "messages": [],
        "variables": judge.variables(item, output, spec.rubric, spec.scale),
    }


async def judge_once(client: httpx.AsyncClient, body: dict[str, Any], spec: Judge) -> judge.Verdict:
    """One call of the judge and what its answer says."""
    try:
        response = await client.post(
            "/v1/chat/completions",
            content=orjson.dumps(body),
            headers={"content-type": "application/json"},
        )
    except httpx.HTTPError as exc:
        return judge.Verdict(None, None, None, f"the gateway did not answer: {exc!r}")
    rid = response.headers.get("x-trimtab-request-id")
    if response.status_code >= 400:
        return judge.Verdict(None, None, None, error_text(response), rid)
    try:
        text = answer_text(response.json())
    except ValueError as exc:
        return judge.Verdict(None, None, None, f"unreadable answer: {exc}", rid)
    return judge.verdict(text, spec.scale, rid)


async def judge_answer(
    client: httpx.AsyncClient, spec: Judge, item: Item, output: str
) -> tuple[judge.Verdict, ...]:
    """The judge's `repeats` verdicts on `output`, one call after another."""
    body = judge_body(spec, item, output)
    return tuple([await judge_once(client, body, spec) for _ in range(spec.repeats)])
