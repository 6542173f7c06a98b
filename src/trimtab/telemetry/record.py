"""The telemetry record: one per request that reached a model endpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class RequestRecord:
    """Everything trimtab knows about one request; names follow OTel GenAI where one exists."""

    id: str
    started_at: float  # epoch seconds
    api: str  # the wire format the client spoke: "openai" | "anthropic"
    operation: str  # gen_ai.operation.name: "chat" | "embeddings"
    tenant: str = "default"
    key_id: str | None = None
    request_model: str | None = None  # gen_ai.request.model, the name the client asked for
    response_model: str | None = None  # gen_ai.response.model, as the provider reported it
    upstream_model: str | None = None  # the provider's model the request was sent to
    provider: str | None = None  # the configured provider's name
    provider_kind: str | None = None  # gen_ai.provider.name family: openai | anthropic | simulator
    response_id: str | None = None  # gen_ai.response.id
    user: str | None = None
    session: str | None = None
    feature: str | None = None
    route: str | None = None
    version: str | None = None
    status_code: int = 200
    error_type: str | None = None  # error.type
    error_message: str | None = None
    duration_ms: float = 0.0
    ttft_ms: float | None = None  # gen_ai.server.time_to_first_token, in ms
    overhead_ms: float = 0.0
    input_tokens: int | None = None  # gen_ai.usage.input_tokens
    output_tokens: int | None = None  # gen_ai.usage.output_tokens
    cost_usd: float | None = None
    streamed: bool = False
    finish_reasons: list[str] | None = None  # gen_ai.response.finish_reasons
    request_body: str | None = None  # as the client sent it
    # as sent to the provider that answered (or the last tried); None: same as request_body
    upstream_request_body: str | None = None
    response_body: str | None = None
    attributes: dict[str, Any] | None = field(default=None)

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        names = _FIELD_NAMES
        return cls(**{k: v for k, v in data.items() if k in names})


_FIELD_NAMES = frozenset(f.name for f in fields(RequestRecord))
