"""OpenTelemetry export: each request record leaves as an OTel GenAI span over OTLP/HTTP.

Optional (the `otel:` config section, off unless it names an endpoint). The telemetry
writer thread hands each batch it takes from the queue to `OtelExport.export`, which
builds one span a record and gives it to the SDK's BatchSpanProcessor; the processor's
own thread encodes and posts them (protobuf, `/v1/traces`). Nothing of it runs in a
request's coroutine, and a collector that is down or slow costs the requests nothing: the
processor's bounded queue drops what it cannot hold.

The span follows the GenAI semantic conventions (client inference and embeddings spans):
named `{gen_ai.operation.name} {gen_ai.request.model}`, kind CLIENT, the `gen_ai.*`
attributes the record names its fields after, `error.type` and status ERROR on a
failure, and trimtab's own under `trimtab.*`. When the request carried a W3C
`traceparent` (kept on the record's attributes by the gateway), the span is its child in
the application's trace. Message content (`gen_ai.input.messages`,
`gen_ai.output.messages`, `gen_ai.system_instructions`, JSON text) only with
`content: true`, and only for records that kept their bodies (`telemetry.record_bodies`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

import orjson
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from trimtab.config import OtelConfig
from trimtab.telemetry.record import RequestRecord

log = logging.getLogger("trimtab.telemetry.otel")

TRACES_PATH = "/v1/traces"
AttributeValue = str | bool | int | float | Sequence[str]
_PROPAGATOR = TraceContextTextMapPropagator()


def _version() -> str:
    """The installed trimtab's version (the package root would bring in the client)."""
    try:
        return metadata.version("trimtab")
    except metadata.PackageNotFoundError:
        return "unknown"


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: `endpoint` as given when it ends with /v1/traces, else the
    collector's base URL with /v1/traces appended."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def parent_context(record: RequestRecord) -> Context | None:
    """The application's span the request came from (its W3C traceparent), if any."""
    attributes = record.attributes or {}
    header = attributes.get("traceparent")
    if not isinstance(header, str):
        return None
    ctx = _PROPAGATOR.extract({"traceparent": header})
    return ctx or None


def span_name(record: RequestRecord) -> str:
    model = record.request_model
    return f"{record.operation} {model}" if model else record.operation


def _body(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def request_parameters(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """`gen_ai.request.*` from the client's body: what it set, when it is a number."""
    out: dict[str, AttributeValue] = {}
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        out["gen_ai.request.max_tokens"] = max_tokens
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f"gen_ai.request.{key}"] = float(value)
    return out


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as GenAI `parts`: text parts from a string or from text blocks;
    another block kept as it came, under its own type."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append({"type": "text", "content": block.get("text", "")})
            elif isinstance(block, dict):
                parts.append({**block, "type": str(block.get("type", "unknown"))})
    return parts


def content_attributes(
    record: RequestRecord, request: Mapping[str, Any] | None = None
) -> dict[str, AttributeValue]:
    """The messages in and out, as the conventions' JSON structures (text when known);
    `request`: the request body already parsed, if it was."""
    out: dict[str, AttributeValue] = {}
    if request is None:
        request = _body(record.request_body)
    if request is not None:
        messages = request.get("messages")
        if isinstance(messages, list):
            inputs = [
                {"role": str(m.get("role", "user")), "parts": _parts(m.get("content"))}
                for m in messages
                if isinstance(m, dict)
            ]
            out["gen_ai.input.messages"] = orjson.dumps(inputs).decode()
        elif "input" in request:  # embeddings
            out["gen_ai.input.messages"] = orjson.dumps(
                [{"role": "user", "parts": _parts(request["input"])}]
            ).decode()
        system = request.get("system")  # the Anthropic wire's separate instructions
        if system is not None:
            out["gen_ai.system_instructions"] = orjson.dumps(_parts(system)).decode()
    response = _body(record.response_body)
    if response is not None:
        outputs: list[dict[str, Any]] = []
        choices = response.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    message = choice["message"]
                    outputs.append(
                        {
                            "role": str(message.get("role", "assistant")),
                            "parts": _parts(message.get("content")),
                            "finish_reason": choice.get("finish_reason"),
                        }
                    )
        elif isinstance(response.get("content"), list):
            outputs.append(
                {
                    "role": str(response.get("role", "assistant")),
                    "parts": _parts(response["content"]),
                    "finish_reason": response.get("stop_reason"),
                }
            )
        if outputs:
            out["gen_ai.output.messages"] = orjson.dumps(outputs).decode()
    return out


def span_attributes(record: RequestRecord, *, content: bool) -> dict[str, AttributeValue]:
    """The span's attributes: `gen_ai.*` where the conventions name one, else `trimtab.*`;
    a value trimtab does not know is left out, never sent empty."""
    attrs: dict[str, AttributeValue] = {"gen_ai.operation.name": record.operation}
    provider = record.provider_kind
    if provider is not None:
        attrs["gen_ai.provider.name"] = provider
        attrs["gen_ai.system"] = provider  # its name before semconv 1.37, still read widely
    optional: dict[str, AttributeValue | None] = {
        "gen_ai.request.model": record.request_model,
        "gen_ai.response.model": record.response_model,
        "gen_ai.response.id": record.response_id,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "gen_ai.conversation.id": record.session,
        "trimtab.request_id": record.id,
        "trimtab.api": record.api,
        "trimtab.tenant": record.tenant,
        "trimtab.key_id": record.key_id,
        "trimtab.route": record.route,
        "trimtab.version": record.version,
        "trimtab.feature": record.feature,
        "trimtab.user": record.user,
        "trimtab.provider": record.provider,
        "trimtab.upstream_model": record.upstream_model,
        "trimtab.cost_usd": record.cost_usd,
        "trimtab.streamed": record.streamed,
        "trimtab.overhead_ms": record.overhead_ms,
        "trimtab.ttft_ms": record.ttft_ms,
        "http.response.status_code": record.status_code,
    }
    for key, value in optional.items():
        if value is not None:
            attrs[key] = value
    if record.finish_reasons:
        attrs["gen_ai.response.finish_reasons"] = list(record.finish_reasons)
    if record.is_error:
        attrs["error.type"] = record.error_type or str(record.status_code)
    request = _body(record.request_body)
    if request is not None:
        attrs.update(request_parameters(request))
    if content:
        attrs.update(content_attributes(record, request))  # the body parsed once
    return attrs


class OtelExport:
    """Turns records into spans and hands them to a batching OTLP/HTTP exporter."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str = "trimtab",
        content: bool = False,
        timeout_s: float = 5.0,
        max_queue_size: int = 2048,
        exporter: SpanExporter | None = None,
    ) -> None:
        self.url = traces_url(endpoint)
        self.content = content
        self._exporter = exporter or OTLPSpanExporter(
            endpoint=self.url, headers=dict(headers or {}), timeout=timeout_s
        )
        version = _version()
        resource = Resource.create({"service.name": service_name, "service.version": version})
        self._provider = TracerProvider(resource=resource)
        self._processor = BatchSpanProcessor(
            self._exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=500,
            export_timeout_millis=timeout_s * 1000,
        )
        self._provider.add_span_processor(self._processor)
        self._tracer: Tracer = self._provider.get_tracer("trimtab", version)
        self._timeout_s = timeout_s

    def export(self, records: Iterable[RequestRecord]) -> None:
        """One span per record, queued for the exporter's thread; never raises."""
        for record in records:
            try:
                self._span(record)
            except Exception:  # a malformed record must not stop the writer thread
                log.exception("could not export request %s as a span", record.id)

    def _span(self, record: RequestRecord) -> None:
        start_ns = int(record.started_at * 1e9)
        end_ns = start_ns + int(max(record.duration_ms, 0.0) * 1e6)
        span = self._tracer.start_span(
            span_name(record),
            context=parent_context(record),
            kind=SpanKind.CLIENT,
            attributes=span_attributes(record, content=self.content),
            start_time=start_ns,
        )
        if record.is_error:
            span.set_status(Status(StatusCode.ERROR, record.error_message or record.error_type))
        span.end(end_time=end_ns)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Export what is queued now; whether it finished within the timeout."""
        millis = int((self._timeout_s if timeout_s is None else timeout_s) * 1000)
        return bool(self._processor.force_flush(millis))

    def shutdown(self) -> None:
        """Flush what is queued (bounded by the exporter's timeout), then stop."""
        self._provider.shutdown()


def from_config(config: OtelConfig) -> OtelExport | None:
    """The export the `otel:` section asks for; None when it names no endpoint."""
    if not config.endpoint:
        return None
    return OtelExport(
        config.endpoint,
        headers=config.headers,
        service_name=config.service_name,
        content=config.content,
        timeout_s=config.timeout_s,
        max_queue_size=config.max_queue_size,
    )
