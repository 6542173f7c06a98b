"""POST a JSON alert to a webhook, retrying with exponential backoff."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from yarl import URL

from trimtab.config import WebhookConfig

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("trimtab.alerts")

# statuses worth retrying; any other 4xx means the request itself is wrong and will stay so
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})


class WebhookMetrics:
    """`trimtab_webhook_deliveries_total` and `trimtab_webhook_failures_total`.

    A failure is a delivery given up on: all retries spent, a status not worth retrying, or
    an alert dropped because the alert queue was full.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "trimtab_webhook_deliveries", "Alerts delivered to a webhook.", registry=registry
        )
        self.failures = Counter(
            "trimtab_webhook_failures",
            "Alert deliveries to a webhook that failed after their retries.",
            registry=registry,
        )


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """The wait before retry number `attempt` (1, 2, ...): base, 2 x base, 4 x base ... max."""
    return float(min(max_s, base_s * 2 ** (attempt - 1)))


def safe_url(url: str) -> str:
    """The webhook's scheme and host only: webhook paths often carry a secret token."""
    parsed = URL(url)
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.explicit_port else "")


def _retryable(status: int) -> bool:
    return status >= 500 or status in _RETRYABLE_4XX


async def deliver(
    session: aiohttp.ClientSession,
    hook: WebhookConfig,
    payload: dict[str, Any],
    *,
    base_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> bool:
    """POST `payload` to the hook: 1 + `hook.retries` attempts, each bounded by `timeout_s`.

    A 2xx answer is a success. Returns whether the alert was delivered; never raises
    (except on cancellation).
    """
    import aiohttp  # loaded on a first delivery (~15 MiB of RSS)

    data = orjson.dumps(payload)
    headers = {"content-type": "application/json", "user-agent": "trimtab", **hook.headers}
    timeout = aiohttp.ClientTimeout(total=hook.timeout_s)
    attempts = 1 + hook.retries
    where = safe_url(hook.url)
    for attempt in range(1, attempts + 1):
        try:
            async with session.post(hook.url, data=data, headers=headers, timeout=timeout) as r:
                await r.read()
                if 200 <= r.status < 300:
                    return True
                problem = f"answered {r.status}"
                retry = _retryable(r.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            retry = True
        if not retry or attempt == attempts:
            log.warning(
                "webhook %s %s on attempt %d of %d; giving up",
                where,
                problem,
                attempt,
                attempts,
            )
            return False
        wait = backoff_s(attempt, base_backoff_s, max_backoff_s)
        log.info("webhook %s %s; retrying in %.2f s", where, problem, wait)
        await asyncio.sleep(wait)
    return False  # pragma: no cover - the loop always returns
