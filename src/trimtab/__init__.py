"""trimtab: an LLMOps control plane."""

__version__ = "0.1.0"

# `import trimtab` imports nothing else (not even typing); `from trimtab import Client`
# loads the client, and httpx, on first use
TYPE_CHECKING = False
if TYPE_CHECKING:
    from trimtab.client import AsyncClient, Client, TrimtabError

__all__ = ["AsyncClient", "Client", "TrimtabError", "__version__"]


def __getattr__(name: str) -> object:
    if name in ("Client", "AsyncClient", "TrimtabError"):
        from trimtab import client

        return getattr(client, name)
    raise AttributeError(f"module 'trimtab' has no attribute {name!r}")
