"""Recorded requests into a dataset's next version: the newest version's items plus the
harvested ones (evals/from_requests.py), pushed with the push's audit row. The API's
`POST /api/datasets/{name}/from-requests` and the console's "add to dataset" button
both add through `add_recorded`."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from trimtab.audit.log import Actor
from trimtab.errors import Invalid, NotFound, Unavailable
from trimtab.evals.datasets import MAX_ITEMS
from trimtab.evals.from_requests import Harvest, RequestQuery, harvest, recorded
from trimtab.evals.store import DatasetKey, DatasetStore, PushResult

PUSH_ATTEMPTS = 3


def _once(
    store: DatasetStore, key: DatasetKey, query: RequestQuery, message: str, by: Actor
) -> tuple[PushResult | None, Harvest]:
    try:
        existing = store.items(key, store.version(key, None).number)
    except NotFound:
        existing = []
    found = harvest(recorded(store.engine, query), existing)
    if not found.items and not existing:
        return None, found  # nothing to make a first version of
    items = [*existing, *found.items]
    if len(items) > MAX_ITEMS:
        raise Invalid(
            f"dataset '{key.name}' would hold {len(items)} items; at most {MAX_ITEMS}",
            code="invalid_dataset",
        )
    return store.push(key, items, message=message, actor=by), found


def add_recorded(
    store: DatasetStore, key: DatasetKey, query: RequestQuery, message: str, by: Actor
) -> tuple[PushResult | None, Harvest]:
    """The push (None: no version, as no request gave an item and the dataset has none)
    and what the harvest read; another push meanwhile (an IntegrityError) is retried on
    the newest version."""
    failure = "IntegrityError"
    for _ in range(PUSH_ATTEMPTS):
        try:
            return _once(store, key, query, message, by)
        except IntegrityError as exc:  # another push meanwhile: read the newest again
            failure = type(exc.orig).__name__
    raise Unavailable(
        f"the store refused this dataset {PUSH_ATTEMPTS} times ({failure}); nothing changed",
        code="store_unavailable",
    )
