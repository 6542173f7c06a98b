"""A Python client of trimtab's control-plane API: `Client` (sync) and `AsyncClient`.

    from trimtab import Client

    with Client("http://127.0.0.1:4000", api_key="tt-...") as tt:
        for record in tt.iter_requests(route="support-answer", status="error"):
            ...

Both share one request and error layer (`_calls`, `_core`): a refusal raises
`TrimtabError` with the server's `status`, `code`, `message` and `request_id`.
"""

from trimtab.client._core import Page, TrimtabError
from trimtab.client.aio import AsyncClient
from trimtab.client.sync import DEFAULT_URL, Client

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "Page", "TrimtabError"]
