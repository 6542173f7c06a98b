"""What a rollup row counts towards an SLI (pure): the valid requests and the good ones.

A rollup row is one minute and one status code of a set of dimensions, with the row's
count and its latency and TTFT sketches (telemetry/rollups.py). The statuses are the
gateway's: a provider timeout is 504, a stream the provider cut or failed mid-way 502,
an unavailable provider or every deployment's breaker open 503, a client that went away
mid-stream 499 (gateway/failures.py, gateway/streaming.py). The guardrail SLI reads the
row's `guardrail_fired`, the requests on which a guardrail fired; the negative-feedback
SLI its `negative_feedback`, the requests that received negative feedback; the refusal
SLI its `refused`, the requests whose response the model refused (NULL on rows from before
migration 0017: those rows are in neither count, slo/kinds.py).
"""

from __future__ import annotations

from ddsketch import DDSketch
from ddsketch.store import DenseStore

from trimtab.slo.burn import Counts
from trimtab.slo.spec import Sli

# the status codes of each error class (spec.ERROR_CLASSES says what each one is)
CLASS_STATUSES: dict[str, frozenset[int]] = {
    "timeout": frozenset({504}),
    "bad_gateway": frozenset({502}),
    "unavailable": frozenset({503}),
    "rate_limited": frozenset({429}),
    "server": frozenset(range(500, 600)),
}
LATENCY_CAVEAT = (
    "latency from the rollups' DDSketch bins (1 % relative accuracy): a request within "
    "±1 % of the threshold may count either way"
)
COST_CAVEAT = (
    "cost from the rollups' DDSketch bins (1 % relative accuracy): a request within ±1 % "
    "of the ceiling may count either way; an unknown cost counts as 0"
)
SESSION_COST_CAVEAT = (
    "sessions count once, in the minute of their first request, at their cost so far: a "
    "session still running can turn from good to bad, never back"
)
REFUSAL_CAVEAT = (
    "refusals as the providers report them (finish reason content_filter or refusal): a "
    "refusal worded as an ordinary answer is not counted; minutes recorded before the "
    "count existed (migration 0017) are in neither count"
)
SCORE_CAVEAT = (
    "scores count in the minute of their request and arrive after it: the newest minutes "
    "fill in late; an answer the scorer could not score is in neither count"
)


def client_error(status: int) -> bool:
    """4xx, 499 included (the client went away): the caller's doing, in neither count."""
    return 400 <= status < 500


def status_counts(sli: Sli, status: int, count: int) -> Counts:
    """Availability and error-rate SLIs: what `count` requests of `status` add."""
    if sli.kind == "availability":
        if client_error(status):
            return Counts(0, 0)
        return Counts(count if status < 400 else 0, count)
    assert sli.kind == "error_rate" and sli.error_class is not None
    bad = status in CLASS_STATUSES[sli.error_class]
    if client_error(status) and not bad:
        return Counts(0, 0)
    return Counts(0 if bad else count, count)


def guardrail_counts(status: int, count: int, fired: int) -> Counts:
    """Guardrail SLIs: of a row's `count` requests, `fired` had a guardrail fire (the
    bad ones). A client error counts only when a guardrail fired on it (a blocked input
    is a 400 or 422, the caller's malformed request is in neither count)."""
    if client_error(status):
        return Counts(0, fired)
    return Counts(count - fired, count)


def feedback_counts(status: int, count: int, negative: int) -> Counts:
    """Negative-feedback SLIs: of a row's `count` requests, `negative` received negative
    feedback (a score below 0.5 or an escalation; counted once a request). Only answered
    requests (status < 400) are valid: an error's feedback is the availability SLI's."""
    if status >= 400:
        return Counts(0, 0)
    return Counts(count - negative, count)


def refusal_counts(status: int, count: int, refused: int) -> Counts:
    """Refusal SLIs: of a row's `count` requests, `refused` were refused by the model (a
    refusal finish reason: OpenAI's `content_filter`, Anthropic's `refusal`;
    types.is_refusal). Only answered requests (2xx) are valid, the good ones those not
    refused; an error is the availability SLI's and a request a guardrail blocked (a 4xx)
    the guardrail SLI's, in neither count here. Only rows that counted their refusals are
    read (kinds.py: `refused` not NULL)."""
    if not 200 <= status < 300:
        return Counts(0, 0)
    return Counts(count - refused, count)


def cost_counts(status: int, count: int, below: int) -> Counts:
    """Cost SLIs: of a row's `count` requests (in its cost sketch), `below` cost at most the
    ceiling. Only answered requests (status < 400) are valid: cost per successful request."""
    if status >= 400:
        return Counts(0, 0)
    return Counts(below, count)


def within(sketch: DDSketch, threshold_ms: float) -> int:
    """How many of the sketch's values are at most `threshold_ms`, by bin: a bin counts
    when its representative value (within 1 % of each value in it) is at most the
    threshold."""
    mapping = sketch._mapping
    if threshold_ms < mapping.min_possible:
        return int(sketch._zero_count)
    last = mapping.key(threshold_ms)
    if mapping.value(last) > threshold_ms:
        last -= 1
    return int(sketch._zero_count) + int(sketch._negative_store.count) + _up_to(sketch._store, last)


def _up_to(store: DenseStore, key: int) -> int:
    if not store.count or key < store.min_key:
        return 0
    if key >= store.max_key:
        return int(store.count)
    return int(sum(store.bins[store.min_key - store.offset : key - store.offset + 1]))


def latency_counts(sli: Sli, status: int, sketch: DDSketch) -> Counts:
    """Latency SLIs: of the requests in `sketch` (the row's latency or TTFT sketch), the
    valid ones are all but client errors, the good ones those answered (status < 400)
    within the threshold."""
    assert sli.kind == "latency" and sli.threshold_ms is not None
    return answered_within(status, int(sketch.count), within(sketch, sli.threshold_ms))


def answered_within(status: int, count: int, below: int) -> Counts:
    """Latency SLIs: a row's `count` requests of which `below` were within the threshold."""
    if client_error(status):
        return Counts(0, 0)
    return Counts(below if status < 400 else 0, count)
