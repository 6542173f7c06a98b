"""OpenTelemetry export (issue 14): each request leaves as an OTel GenAI span, over OTLP/HTTP
protobuf, to a real receiver on loopback that decodes it with the OpenTelemetry protobuf
definitions; through a real gateway and the official `openai` SDK."""

from __future__ import annotations

import gzip
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support import APP_KEY, KEYS, GatewayFactory, Running, stored, wait_for
from trimtab.config import OtelConfig
from trimtab.telemetry.otel import (
    OtelExport,
    from_config,
    parent_context,
    span_attributes,
    span_name,
    traces_url,
)
from trimtab.telemetry.record import RequestRecord
from trimtab.testing.servers import free_port


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces, a protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Span]] = []  # (resource attributes, span)
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.paths.append(self.path)
                received.headers.append({k.lower(): v for k, v in self.headers.items()})
                for resource_spans in request.resource_spans:
                    resource = attributes(resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            received.spans.append((resource, span))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def span_of(self, request_id: str) -> Span:
        def found() -> bool:
            return any(_request_id(s) == request_id for _, s in self.spans)

        wait_for(found)
        return next(s for _, s in self.spans if _request_id(s) == request_id)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _request_id(span: Span) -> Any:
    return attributes(span.attributes).get("trimtab.request_id")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def client(running: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=running.url + "/v1", api_key=APP_KEY, max_retries=0)


def test_a_request_leaves_as_a_genai_span_in_the_callers_trace(
    gateway: GatewayFactory, receiver: Receiver
) -> None:
    running = gateway(
        keys=KEYS,
        otel={
            "endpoint": receiver.url,
            "service_name": "trimtab-test",
            "headers": {"x-collector-token": "t0ken"},
        },
    )
    header, trace_id, parent_id = traceparent()
    before = time.time()
    raw = client(running).chat.completions.with_raw_response.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": "a secret question"}],
        max_tokens=64,
        temperature=0.25,
        extra_headers={"traceparent": header, "x-trimtab-feature": "faq"},
    )
    completion = raw.parse()
    rid = raw.headers["x-trimtab-request-id"]
    span = receiver.span_of(rid)
    row = stored(running, rid)

    assert span.name == "chat gpt-mock"
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.trace_id.hex() == trace_id
    assert span.parent_span_id.hex() == parent_id
    assert span.span_id.hex() != parent_id and len(span.span_id) == 8
    assert span.status.code != Status.STATUS_CODE_ERROR
    assert before * 1e9 - 1e9 <= span.start_time_unix_nano <= span.end_time_unix_nano
    assert span.end_time_unix_nano - span.start_time_unix_nano == pytest.approx(
        row["duration_ms"] * 1e6, abs=1e3
    )
    attrs = attributes(span.attributes)
    assert completion.usage is not None
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-mock"
    assert attrs["gen_ai.response.model"] == completion.model
    assert attrs["gen_ai.response.id"] == completion.id
    assert attrs["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attrs["gen_ai.response.finish_reasons"] == [completion.choices[0].finish_reason]
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert attrs["gen_ai.request.temperature"] == 0.25
    assert attrs["trimtab.tenant"] == "acme"
    assert attrs["trimtab.feature"] == "faq"
    assert attrs["trimtab.cost_usd"] == pytest.approx(row["cost_usd"])
    assert attrs["http.response.status_code"] == 200
    assert "error.type" not in attrs
    # content only when configured
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for k in attrs)
    assert "a secret question" not in str(span)
    resource = next(res for res, s in receiver.spans if _request_id(s) == rid)
    assert resource["service.name"] == "trimtab-test"
    assert resource["service.version"] == metadata.version("trimtab")
    assert receiver.paths[0] == "/v1/traces"
    assert receiver.headers[0]["x-collector-token"] == "t0ken"
    assert receiver.headers[0]["content-type"] == "application/x-protobuf"

    # a failure: status error, error.type; no traceparent: a trace of its own, no parent
    with pytest.raises(openai.InternalServerError) as failed:
        client(running).chat.completions.create(
            model="gpt-500", messages=[{"role": "user", "content": "x"}]
        )
    failed_id = failed.value.response.headers["x-trimtab-request-id"]
    bad = receiver.span_of(failed_id)
    assert bad.status.code == Status.STATUS_CODE_ERROR
    assert bad.status.message
    bad_attrs = attributes(bad.attributes)
    assert bad_attrs["error.type"] == stored(running, failed_id)["error_type"]
    assert bad_attrs["http.response.status_code"] >= 500
    assert bad.parent_span_id == b""
    assert bad.trace_id.hex() != trace_id and len(bad.trace_id) == 16


def test_streams_and_the_anthropic_wire_leave_spans_too(
    gateway: GatewayFactory, receiver: Receiver
) -> None:
    running = gateway(keys=KEYS, otel={"endpoint": receiver.url})
    header, trace_id, parent_id = traceparent()
    stream = client(running).chat.completions.with_raw_response.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"traceparent": header},
    )
    chunks = list(stream.parse())
    streamed = receiver.span_of(stream.headers["x-trimtab-request-id"])
    attrs = attributes(streamed.attributes)
    usage = next(c.usage for c in chunks if c.usage is not None)
    assert streamed.name == "chat gpt-mock" and streamed.parent_span_id.hex() == parent_id
    assert streamed.trace_id.hex() == trace_id
    assert attrs["trimtab.streamed"] is True and attrs["trimtab.ttft_ms"] > 0
    assert attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]

    claude = anthropic.Anthropic(base_url=running.url, api_key=APP_KEY, max_retries=0)
    raw = claude.messages.with_raw_response.create(
        model="claude-mock",
        max_tokens=32,
        messages=[{"role": "user", "content": "hello claude"}],
        extra_headers={"traceparent": header},
    )
    message = raw.parse()
    span = receiver.span_of(raw.headers["x-trimtab-request-id"])
    attrs = attributes(span.attributes)
    assert span.name == "chat claude-mock" and span.trace_id.hex() == trace_id
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["trimtab.api"] == "anthropic"
    assert attrs["gen_ai.request.max_tokens"] == 32
    assert attrs["gen_ai.usage.input_tokens"] == message.usage.input_tokens


def test_content_is_exported_only_when_configured(
    gateway: GatewayFactory, receiver: Receiver
) -> None:
    running = gateway(keys=KEYS, otel={"endpoint": receiver.url + "/v1/traces", "content": True})
    raw = client(running).chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": "what is in the box"}]
    )
    answer = raw.parse().choices[0].message.content
    attrs = attributes(receiver.span_of(raw.headers["x-trimtab-request-id"]).attributes)
    inputs = json.loads(attrs["gen_ai.input.messages"])
    assert inputs == [
        {"role": "user", "parts": [{"type": "text", "content": "what is in the box"}]}
    ]
    outputs = json.loads(attrs["gen_ai.output.messages"])
    assert outputs[0]["role"] == "assistant"
    assert outputs[0]["parts"] == [{"type": "text", "content": answer}]
    assert outputs[0]["finish_reason"] == "stop"


def test_requests_are_unaffected_when_the_collector_is_down(gateway: GatewayFactory) -> None:
    closed = free_port()
    running = gateway(keys=KEYS, otel={"endpoint": f"http://127.0.0.1:{closed}", "timeout_s": 0.5})
    header, _, _ = traceparent()
    ids = []
    for i in range(5):
        raw = client(running).chat.completions.with_raw_response.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": f"still served {i}"}],
            extra_headers={"traceparent": header},
        )
        assert raw.parse().choices[0].message.content == f"mock reply to: still served {i}"
        ids.append(raw.headers["x-trimtab-request-id"])
    for rid in ids:
        row = stored(running, rid)
        assert row["status_code"] == 200
        assert row["attributes"]["traceparent"] == header


def test_without_the_header_the_record_carries_no_traceparent(gateway: GatewayFactory) -> None:
    running = gateway(keys=KEYS)
    raw = client(running).chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": "plain"}]
    )
    attrs = stored(running, raw.headers["x-trimtab-request-id"])["attributes"] or {}
    assert "traceparent" not in attrs


# -- pure parts ---------------------------------------------------------------------------


def _record(**extra: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "id": "req_1",
        "started_at": 1_700_000_000.0,
        "api": "anthropic",
        "operation": "chat",
        "request_model": "claude-mock",
        "provider_kind": "anthropic",
        "duration_ms": 12.5,
    }
    fields.update(extra)
    return RequestRecord(**fields)


def test_traces_url_appends_the_path_once() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


def test_an_invalid_traceparent_starts_a_trace_of_its_own() -> None:
    assert parent_context(_record()) is None
    assert parent_context(_record(attributes={"traceparent": "garbage"})) is None
    zero = "00-" + "0" * 32 + "-" + "1" * 16 + "-01"  # an all-zero trace id is invalid
    assert parent_context(_record(attributes={"traceparent": zero})) is None
    ok = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert parent_context(_record(attributes={"traceparent": ok})) is not None


def test_unknown_values_are_left_out_and_anthropic_content_is_mapped() -> None:
    record = _record(
        request_body=json.dumps(
            {
                "system": "be brief",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "max_tokens": 10,
                "temperature": True,  # not a number: left out
            }
        ),
        response_body=json.dumps(
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "yo"}],
                "stop_reason": "end_turn",
            }
        ),
        status_code=529,
        error_message="overloaded",
    )
    assert span_name(record) == "chat claude-mock"
    assert span_name(_record(request_model=None)) == "chat"
    plain = span_attributes(record, content=False)
    assert plain["gen_ai.request.max_tokens"] == 10
    assert "gen_ai.request.temperature" not in plain
    assert "gen_ai.usage.input_tokens" not in plain and "trimtab.route" not in plain
    assert plain["error.type"] == "529"
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system_")) for k in plain)
    full = span_attributes(record, content=True)
    assert json.loads(str(full["gen_ai.system_instructions"])) == [
        {"type": "text", "content": "be brief"}
    ]
    assert json.loads(str(full["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
    assert json.loads(str(full["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "yo"}],
            "finish_reason": "end_turn",
        }
    ]


def test_off_unless_an_endpoint_is_configured() -> None:
    assert from_config(OtelConfig()) is None
    export = from_config(OtelConfig(endpoint="http://127.0.0.1:1"))
    assert isinstance(export, OtelExport)
    export.shutdown()


def test_the_callers_sampling_decision_is_kept() -> None:
    # the SDK's own in-memory exporter in place of OTLP: what the processor hands on
    memory = InMemorySpanExporter()
    export = OtelExport("http://127.0.0.1:1", exporter=memory)
    sampled = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    unsampled = "00-" + "e" * 32 + "-" + "f" * 16 + "-00"
    export.export(
        [
            _record(id="req_s", attributes={"traceparent": sampled}),
            _record(id="req_u", attributes={"traceparent": unsampled}),
            _record(id="req_n"),
        ]
    )
    assert export.flush(5)
    spans = {
        str((s.attributes or {})["trimtab.request_id"]): s for s in memory.get_finished_spans()
    }
    assert set(spans) == {"req_s", "req_n"}  # the caller chose not to sample req_u
    parent = spans["req_s"].parent
    assert parent is not None and parent.span_id == int("d" * 16, 16)
    assert spans["req_s"].start_time == int(1_700_000_000.0 * 1e9)
    assert spans["req_s"].end_time == int(1_700_000_000.0 * 1e9) + int(12.5 * 1e6)
    export.shutdown()
