"""The incident calls of `Client` and `AsyncClient` (client/_incidents.py): the same
methods with the same signatures on both, and each client class has them."""

from __future__ import annotations

import inspect

from trimtab.client import AsyncClient, Client
from trimtab.client._incidents import AsyncIncidentMethods, IncidentMethods


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_the_two_mixins_are_twins() -> None:
    sync, aio = public(IncidentMethods), public(AsyncIncidentMethods)
    assert sorted(sync) == sorted(aio)
    assert sorted(sync) == [
        "add_incident_rule", "close_incident", "incident", "incident_action", "incident_note",
        "incident_postmortem", "incident_timeline", "incidents", "open_incident",
        "record_postmortem", "set_incident_severity",
    ]  # fmt: skip
    for name, signature in sync.items():
        assert signature.parameters.keys() == aio[name].parameters.keys(), name
        assert list(signature.parameters.values())[1:] == list(aio[name].parameters.values())[1:]
        assert str(signature.return_annotation) == str(aio[name].return_annotation), name
        assert inspect.iscoroutinefunction(getattr(AsyncIncidentMethods, name)), name


def test_the_clients_take_them() -> None:
    assert issubclass(Client, IncidentMethods)
    assert issubclass(AsyncClient, AsyncIncidentMethods)
    for name in public(IncidentMethods):
        assert getattr(Client, name) is getattr(IncidentMethods, name)
