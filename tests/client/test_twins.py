"""`Client` and `AsyncClient` offer the same calls with the same signatures."""

from __future__ import annotations

import inspect

from trimtab.client import AsyncClient, Client


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and (not name.startswith("_") or name == "__init__")
    }


def test_the_two_clients_have_the_same_methods_and_signatures() -> None:
    sync, aio = public(Client), public(AsyncClient)
    assert sorted(sync) == sorted(aio)
    assert len(sync) > 30
    for name, signature in sync.items():
        assert signature.parameters == aio[name].parameters, name
        returned = str(aio[name].return_annotation).replace("AsyncIterator", "Iterator")
        assert str(signature.return_annotation) == returned, name
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)) or name in (
            "__init__",
            "iter_requests",
            "iter_audit",
            "export_user",
            "export_user_lines",
        ), name
