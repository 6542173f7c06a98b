"""The API tests' shared fixture: a gateway that served the request-log tests' traffic."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.request_traffic import Traffic, make_traffic
from tests.support import KEYS, GatewayFactory


@pytest.fixture
def traffic(gateway: GatewayFactory, store_url: str) -> Iterator[Traffic]:
    running = gateway(store=store_url, keys=KEYS)
    with httpx.Client(base_url=running.url, timeout=30) as client:
        sent = make_traffic(client)
        assert running.wait_for_rows(len(sent)) == len(sent)
        yield Traffic(running, client, sent)
