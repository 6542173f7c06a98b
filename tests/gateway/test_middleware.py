"""`HotRoutes`: the gateway's POST endpoints answered ahead of the router, nothing else."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from trimtab.gateway.middleware import HotRoutes, LastResort


async def hot(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"hot {request.method} {body.decode()} {request.headers['x-a']}")


async def routed(request: Request) -> Response:
    return PlainTextResponse("routed")


async def crashing(request: Request) -> Response:
    raise RuntimeError("boom")


def app() -> Starlette:
    routes = [
        Route("/v1/chat/completions", routed, methods=["POST"]),
        Route("/v1/models", routed, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(LastResort),
            Middleware(HotRoutes, routes={"/v1/chat/completions": hot, "/v1/embeddings": crashing}),
        ],
    )


async def test_a_hot_post_is_answered_by_its_endpoint_and_the_rest_by_the_router() -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        reply = await client.post("/v1/chat/completions", content=b"hi", headers={"x-a": "1"})
        assert reply.text == "hot POST hi 1"  # the router's endpoint for it is never called
        assert (await client.get("/v1/models")).text == "routed"
        # another method on a hot path is the router's: 405, as declared
        assert (await client.get("/v1/chat/completions")).status_code == 405
        assert (await client.post("/v1/chat/completions/x")).status_code == 404


async def test_an_exception_from_a_hot_endpoint_is_still_answered_by_last_resort() -> None:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        reply = await client.post("/v1/embeddings", json={})
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "internal_error"
    assert reply.headers["x-trimtab-request-id"].startswith("req_")
