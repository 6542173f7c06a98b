"""The one table from kind of failure to HTTP status, and what each kind looks like on both
wire formats."""

from __future__ import annotations

import pytest

from trimtab.errors import (
    Conflict,
    DomainError,
    Forbidden,
    GatewayError,
    Invalid,
    LimitExceeded,
    NotFound,
    TooLarge,
    Unauthenticated,
    Unavailable,
    as_gateway_error,
    error_payload,
    gateway_error,
)

# kind -> (status, default code, OpenAI error type, Anthropic error type)
EXPECTED: dict[type[DomainError], tuple[int, str, str, str]] = {
    Invalid: (400, "invalid_request", "invalid_request_error", "invalid_request_error"),
    Unauthenticated: (401, "invalid_api_key", "authentication_error", "authentication_error"),
    Forbidden: (403, "forbidden", "permission_error", "permission_error"),
    NotFound: (404, "not_found", "not_found_error", "not_found_error"),
    Conflict: (409, "conflict", "invalid_request_error", "invalid_request_error"),
    TooLarge: (413, "request_too_large", "invalid_request_error", "request_too_large"),
    LimitExceeded: (429, "rate_limited", "rate_limit_error", "rate_limit_error"),
    Unavailable: (503, "unavailable", "api_error", "overloaded_error"),
}


def test_every_kind_is_in_the_table() -> None:
    # a kind added to errors.py without a row here (and a status there) fails this
    assert set(DomainError.__subclasses__()) == set(EXPECTED)


@pytest.mark.parametrize("kind", list(EXPECTED), ids=lambda k: k.__name__)
def test_each_kind_maps_to_its_status_in_both_wire_formats(kind: type[DomainError]) -> None:
    status, code, openai_type, anthropic_type = EXPECTED[kind]
    err = gateway_error(kind("what went wrong"))
    assert (err.status, err.code, err.message) == (status, code, "what went wrong")

    openai = error_payload(err, "openai", "req_1")
    assert openai == {
        "error": {
            "message": "what went wrong (request id: req_1)",
            "type": openai_type,
            "param": None,
            "code": code,
            "request_id": "req_1",
        }
    }
    anthropic = error_payload(err, "anthropic", "req_1")
    assert anthropic == {
        "type": "error",
        "error": {"type": anthropic_type, "message": "what went wrong (request id: req_1)"},
        "request_id": "req_1",
    }


def test_code_param_and_retry_hint_reach_the_wire_error() -> None:
    err = gateway_error(
        LimitExceeded("slow down", code="budget_exceeded", param="model", retry_after="30")
    )
    assert (err.status, err.code, err.param, err.retry_after) == (
        429,
        "budget_exceeded",
        "model",
        "30",
    )
    assert error_payload(err, "openai", "r")["error"] == {
        "message": "slow down (request id: r)",
        "type": "rate_limit_error",
        "param": "model",
        "code": "budget_exceeded",
        "request_id": "r",
    }


def test_a_finer_kind_takes_the_status_of_the_kind_it_refines() -> None:
    class GateRefused(Conflict):
        default_code = "gate_refused"

    err = gateway_error(GateRefused("needs an eval"))
    assert (err.status, err.code) == (409, "gate_refused")
    assert gateway_error(DomainError("unnamed")).status == 400


def test_a_gateway_error_passes_as_it_is() -> None:
    wire = GatewayError(502, "upstream_error", "the provider failed")
    assert as_gateway_error(wire) is wire
    assert as_gateway_error(NotFound("x")).status == 404
