"""trimtab: an LLMOps control plane."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from trimtab.client import AsyncClient, Client, TrimtabError

__all__ = ["AsyncClient", "Client", "TrimtabError", "__version__"]


def __getattr__(name: str) -> Any:
    """`from trimtab import Client` without importing httpx on a bare `import trimtab`."""
    if name in ("Client", "AsyncClient", "TrimtabError"):
        from trimtab import client

        return getattr(client, name)
    raise AttributeError(f"module 'trimtab' has no attribute {name!r}")
