"""What a request's record says about who served it and what it cost, and its charge: the
policy's admission, settled once the cost is known."""

from __future__ import annotations

from typing import Any

from trimtab.gateway.catalog import Deployment, Target
from trimtab.gateway.dialects import finish_reasons_of, usage_of
from trimtab.gateway.exchange import Exchange
from trimtab.policy.service import Admission, Ask
from trimtab.types import Wire


class Charge:
    """A request's admission by the policy, settled exactly once when its cost is known."""

    __slots__ = ("admission", "ask")

    def __init__(self, ask: Ask, admission: Admission) -> None:
        self.ask = ask
        self.admission = admission


def note_served(ex: Exchange, target: Target, dep: Deployment) -> None:
    """Note the provider and model that answer (and the model, when not the one asked)."""
    rec = ex.record
    rec.provider = dep.provider.name
    rec.provider_kind = dep.provider.kind
    rec.upstream_model = dep.upstream_model
    if target.name != rec.request_model:
        ex.annotate(served_by=target.name)


def account(ex: Exchange, target: Target, parsed: dict[str, Any], wire: Wire) -> None:
    """Usage, cost, finish reasons and response ids of a whole (not streamed) answer."""
    rec = ex.record
    rec.input_tokens, rec.output_tokens = usage_of(wire, parsed)
    rec.cost_usd = target.config.pricing.cost(rec.input_tokens, rec.output_tokens)
    rec.finish_reasons = finish_reasons_of(wire, parsed)
    rid, model = parsed.get("id"), parsed.get("model")
    rec.response_id = rid if isinstance(rid, str) else None
    rec.response_model = model if isinstance(model, str) else None
