"""The scorers online scoring runs on one suite's sampled answers, built once per applied
suite: the pure ones (run together in a thread), `python` ones (the user's function,
imported once, each call in a small thread pool with a timeout) and judges (their route
called through the server's own gateway, in process, with `eval:online:SUITE`).

Trust: a `python` scorer runs code in the server. The server runs it only when the
function's module is one its configuration names (`evals.python_scorers`, a name covering
its submodules): whoever applies a suite names the function, whoever configures the server
decides which code may run, as whoever runs `trimtab eval run` does for the CLI.

Whatever a judge or a python scorer does (a failed call, an answer that is no score, an
exception, a timeout), the outcome is that scorer's error on the answer: stored with the
message, counted, never raised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine, func, select

from trimtab.evals.datasets import Item
from trimtab.evals.judging import judge_answer
from trimtab.evals.scorers import Answer, Judge, Python, Scorer, ScorerError, build
from trimtab.evals.suites import SuiteDefinition
from trimtab.store.tables import requests
from trimtab.types import EVAL_FEATURE_PREFIX, SHARED, Scope

ONLINE_FEATURE_PREFIX = EVAL_FEATURE_PREFIX + "online:"  # eval traffic: never production's
PYTHON_WORKERS = 2
ONLINE_SCORING_OWNER = "trimtab:online-scoring"  # the owner of the judges' calls' key

# (tenant, headers) -> a client of the server's own gateway, authenticated for the tenant
JudgeClients = Callable[[str, Mapping[str, str]], httpx.AsyncClient]

# a score: (value, passed, reason); value None: the scorer's error, its message the reason
Outcome = tuple[float | None, bool | None, str]


def online_feature(suite: str) -> str:
    """The feature a suite's judge calls carry: `eval:online:SUITE`."""
    return ONLINE_FEATURE_PREFIX + suite


def python_allowed(function: str, modules: Sequence[str]) -> bool:
    """Whether `package.module:name` lies in one of the configured modules."""
    module = function.partition(":")[0]
    return any(module == m or module.startswith(m + ".") for m in modules)


def python_problem(spec: Python, modules: Sequence[str]) -> str | None:
    """Why this server cannot run a python scorer online (None: it can, and has imported
    its function)."""
    if not python_allowed(spec.function, modules):
        named = ", ".join(modules) or "none"
        return (
            f"python scorer '{spec.name}': module of '{spec.function}' is not one this "
            f"server runs (its configuration's evals.python_scorers: {named})"
        )
    try:
        build(spec)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass
class SuiteScorers:
    """One applied suite's online scorers, built once (per digest of the suite)."""

    digest: str
    plain: dict[str, Scorer] = field(default_factory=dict)
    python: dict[str, Scorer] = field(default_factory=dict)
    judges: dict[str, tuple[Judge, Scorer]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # scorer -> why it cannot run

    @property
    def slow(self) -> bool:
        return bool(self.python or self.judges)


def load(definition: SuiteDefinition, digest: str, modules: Sequence[str]) -> SuiteScorers:
    """Build a suite's online scorers; a python scorer is imported here, once."""
    out = SuiteScorers(digest)
    assert definition.online is not None
    for spec in definition.online.scorers:
        if isinstance(spec, Python):
            problem = python_problem(spec, modules)
            if problem is not None:
                out.broken[spec.name] = problem
            else:
                out.python[spec.name] = build(spec)
        elif isinstance(spec, Judge):
            out.judges[spec.name] = (spec, build(spec))
        else:
            out.plain[spec.name] = build(spec)
    return out


def score_plain(scorers: SuiteScorers, item: Item, text: str) -> dict[str, Outcome]:
    """The pure scorers' outcomes, and the broken scorers' errors (synchronous)."""
    out: dict[str, Outcome] = {name: (None, None, why) for name, why in scorers.broken.items()}
    for name, scorer in scorers.plain.items():
        try:
            score = scorer(item, Answer(text))
            out[name] = (score.value, score.passed, score.reason)
        except ScorerError as exc:
            out[name] = (None, None, str(exc))
    return out


class PythonRunner:
    """Runs python scorers off the event loop, each call at most `timeout_s`. A call that
    times out is an error; its thread cannot be stopped and finishes on its own, so a pool
    of PYTHON_WORKERS threads bounds what such calls can hold."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def run(
        self, name: str, scorer: Scorer, item: Item, text: str, timeout_s: float
    ) -> Outcome:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                PYTHON_WORKERS, thread_name_prefix="trimtab-online-python"
            )
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._pool, scorer, item, Answer(text))
        try:
            score = await asyncio.wait_for(call, timeout_s)
        except TimeoutError:
            return None, None, f"scorer '{name}': no score within {timeout_s:g} s"
        except ScorerError as exc:
            return None, None, str(exc)
        except Exception as exc:  # the user's code: any exception is an error on the answer
            return None, None, f"scorer '{name}' raised {type(exc).__name__}: {exc}"[:500]
        return score.value, score.passed, score.reason

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


async def judged(
    clients: JudgeClients,
    spec: Judge,
    scorer: Scorer,
    *,
    tenant: str,
    suite: str,
    request_id: str,
    item: Item,
    text: str,
    timeout_s: float,
) -> Outcome:
    """A judge's score of one production answer, its calls made through the server's own
    gateway as `eval:online:SUITE`, session the scored request's id."""
    headers = {"x-trimtab-feature": online_feature(suite), "x-trimtab-session": request_id}
    try:
        async with clients(tenant, headers) as client:
            verdicts = await asyncio.wait_for(
                judge_answer(client, spec, item, text), timeout_s * spec.repeats
            )
    except TimeoutError:
        return None, None, f"scorer '{spec.name}': the judge gave no answer within {timeout_s:g} s"
    except Exception as exc:  # the in-process call itself failed: an error, never a crash
        return None, None, f"scorer '{spec.name}': the judge call failed: {exc!r}"[:500]
    try:
        score = scorer(item, Answer(text, judged={spec.name: verdicts}))
    except ScorerError as exc:
        return None, None, str(exc)
    return score.value, score.passed, score.reason


def judge_spend(
    engine: Engine, suite: str, scope: Scope, routes: Sequence[str], now: datetime
) -> float:
    """What a suite's judges' calls (to these routes) cost today (UTC), by the gateway's
    records of them."""
    c = requests.c
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    where = [c.route.in_(routes), c.started_at >= start, c.feature == online_feature(suite)]
    if scope != SHARED:
        where.append(c.tenant == scope)
    query = select(func.coalesce(func.sum(c.cost_usd), 0.0)).where(*where)
    with engine.connect() as conn:
        return float(conn.execute(query).scalar() or 0.0)
