"""GET /api/breakers: each deployment's circuit breaker."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import json_response, reader
from trimtab.api.endpoints import LIST_BREAKERS
from trimtab.auth.keyring import KeyRing
from trimtab.gateway.breakers import Breakers


class BreakersAPI:
    def __init__(self, breakers: Breakers, keys: KeyRing) -> None:
        self._breakers = breakers
        self._keys = keys

    def routes(self) -> list[Route]:
        return [LIST_BREAKERS.route(self.list_breakers)]

    async def list_breakers(self, request: Request) -> Response:
        reader(self._keys, request)
        data = [await self._breakers.status(key) for key in sorted(self._breakers.known)]
        return json_response({"data": data})
