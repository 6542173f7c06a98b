"""The dataset and eval calls of `Client` and `AsyncClient` (client/_evals.py): the same
methods with the same signatures on both, and each client class has them."""

from __future__ import annotations

import inspect

from trimtab.client import AsyncClient, Client
from trimtab.client._evals import AsyncEvalMethods, EvalMethods


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_the_two_mixins_are_twins() -> None:
    sync, aio = public(EvalMethods), public(AsyncEvalMethods)
    assert sorted(sync) == sorted(aio)
    assert sorted(sync) == [
        "apply_eval_suites", "attest_eval_run", "compare_eval_runs", "create_eval_run",
        "dataset_diff", "dataset_from_requests", "dataset_version", "dataset_versions",
        "datasets", "eval_cache", "eval_results", "eval_run", "eval_runs", "eval_suite",
        "eval_suites", "push_dataset", "record_eval_results",
    ]  # fmt: skip
    for name, signature in sync.items():
        assert signature.parameters.keys() == aio[name].parameters.keys(), name
        assert list(signature.parameters.values())[1:] == list(aio[name].parameters.values())[1:]
        assert str(signature.return_annotation) == str(aio[name].return_annotation), name
        assert inspect.iscoroutinefunction(getattr(AsyncEvalMethods, name)), name


def test_the_clients_take_them() -> None:
    assert issubclass(Client, EvalMethods)
    assert issubclass(AsyncClient, AsyncEvalMethods)
    for name in public(EvalMethods):
        assert getattr(Client, name) is getattr(EvalMethods, name)
        assert getattr(AsyncClient, name) is getattr(AsyncEvalMethods, name)
