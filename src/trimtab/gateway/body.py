"""Reading a request body within its size limit."""

from __future__ import annotations

from starlette.requests import Request

from trimtab.errors import GatewayError


def _too_large(size: int | str, limit: int) -> GatewayError:
    return GatewayError(
        413, "request_too_large", f"request body is {size} bytes; this gateway accepts {limit}"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(declared, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit}", limit)
        chunks.append(chunk)
    return b"".join(chunks)
