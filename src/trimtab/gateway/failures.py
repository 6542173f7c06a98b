"""What a client sees when the provider fails."""

from __future__ import annotations

from trimtab.errors import GatewayError
from trimtab.providers.base import UpstreamError

# provider statuses that say the client's request itself was wrong: passed on as is
_CLIENT_FAULTS = frozenset({400, 404, 409, 413, 422})


def from_upstream(exc: UpstreamError) -> GatewayError:
    """Map a provider failure to a status that tells retryable from not."""
    if exc.kind == "connect":
        return GatewayError(502, "upstream_unreachable", exc.message)
    if exc.kind == "timeout":
        return GatewayError(504, "upstream_timeout", exc.message)
    if exc.kind == "invalid_response":
        return GatewayError(502, "upstream_invalid_response", exc.message)
    if exc.kind == "stream_cut":
        return GatewayError(502, "upstream_connection_lost", exc.message)
    status = exc.status or 502
    if status == 429:
        return GatewayError(429, "upstream_rate_limited", exc.message, retry_after=exc.retry_after)
    if status in _CLIENT_FAULTS:
        return GatewayError(status, "upstream_rejected_request", exc.message)
    if status in (401, 403):
        return GatewayError(502, "upstream_auth_failed", exc.message)
    if status == 503:
        return GatewayError(503, "upstream_unavailable", exc.message, retry_after=exc.retry_after)
    return GatewayError(502, "upstream_error", exc.message)
