"""/api/datasets: push eval datasets as JSONL or CSV; read their versions, items and diffs.

Pushing needs a key of role operator or admin; reading, viewer, operator or admin. Dataset
names are per tenant like route names: NAME is the caller's tenant's dataset, else the
shared one; `?tenant=T` picks tenant T's (a non-admin may name only its own) and
`?tenant=` the shared one. A dataset the caller may not see answers 404, as if it did not
exist. A file with any bad row is a 400 `invalid_dataset` naming every problem; nothing is
stored from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trimtab.api.access import actor, json_response, operator, reader, scoped_tenant
from trimtab.api.errors import change
from trimtab.api.eval_endpoints import (
    DATASET,
    DATASET_FROM_REQUESTS,
    DATASET_TENANT,
    DIFF_DATASET,
    GET_DATASET_VERSION,
    LIST_DATASET_VERSIONS,
    LIST_DATASETS,
    PUSH_DATASET,
)
from trimtab.api.models import APPLY_MESSAGE_CHARS, SOURCE_CHARS, TENANT_CHARS
from trimtab.api.params import NUL_MESSAGE, bad_param, nul_field
from trimtab.auth.keyring import KeyRing
from trimtab.durations import parse_duration
from trimtab.errors import Forbidden, Invalid, NotFound, Unavailable
from trimtab.evals.adding import add_recorded
from trimtab.evals.datasets import DatasetError, Format, Item, diff, parse
from trimtab.evals.from_requests import MAX_REQUESTS, RequestQuery
from trimtab.evals.store import DatasetKey, DatasetStore, DatasetVersion, PushResult
from trimtab.types import SHARED, Principal, name_problem, new_request_id

_DEFAULT_HARVEST = 100  # requests read when no limit is given

log = logging.getLogger(__name__)

_FORMATS: tuple[Format, ...] = ("jsonl", "csv")
_PUSH_ATTEMPTS = 3


def _items(content: str, fmt: Format, source: str) -> list[Item]:
    """The file's items, or a 400 naming every bad row (a NUL included: the store's text
    columns cannot hold one)."""
    try:
        items = parse(content, fmt, source)
    except DatasetError as exc:
        raise Invalid(str(exc), code="invalid_dataset") from None
    problems = [
        f"{source}: item {n} ('{item.id!r}'): '{field}' {NUL_MESSAGE}"
        for n, item in enumerate(items, start=1)
        if (field := nul_field(item.to_json())) is not None
    ]
    if problems:
        raise Invalid("\n".join(problems), code="invalid_dataset")
    return items


class DatasetsAPI:
    def __init__(self, store: DatasetStore, keys: KeyRing) -> None:
        self._store = store
        self._keys = keys

    def routes(self) -> list[Route]:
        return [
            PUSH_DATASET.route(self.push),
            DATASET_FROM_REQUESTS.route(self.from_requests),
            LIST_DATASETS.route(self.list_datasets),
            LIST_DATASET_VERSIONS.route(self.list_versions),
            GET_DATASET_VERSION.route(self.get_version),
            DIFF_DATASET.route(self.diff),
        ]

    # -- who may, and which dataset ------------------------------------------------------

    async def _key(self, request: Request, principal: Principal) -> DatasetKey:
        """The dataset the path names, as this caller sees it (404 when it may not)."""
        name, asked = DATASET.of(request), DATASET_TENANT.of(request)
        if asked is None:
            found: DatasetKey = await run_in_threadpool(self._store.resolve, name, principal.tenant)
            return found
        if not (principal.is_admin or asked in (principal.tenant, SHARED)):
            raise NotFound(f"no dataset named '{name}'")  # another tenant's: like a missing one
        key = DatasetKey(asked, name)
        await run_in_threadpool(self._store.versions, key)  # NotFound when it has none
        return key

    async def _version(self, key: DatasetKey, number: int | None, param: str) -> DatasetVersion:
        try:
            found: DatasetVersion = await run_in_threadpool(self._store.version, key, number)
        except NotFound as exc:
            raise NotFound(str(exc), param=param) from None
        return found

    # -- writing -------------------------------------------------------------------------

    async def push(self, request: Request) -> Response:
        rid = new_request_id()
        principal = operator(self._keys, request, "push datasets")
        name = DATASET.of(request)
        problem = name_problem("dataset", name)
        if problem is not None:
            raise bad_param("dataset", problem)
        body = await PUSH_DATASET.json(request)
        fmt = body.get("format")
        if fmt not in _FORMATS:
            raise bad_param("format", f"{fmt!r} is not one of {', '.join(_FORMATS)}")
        content = body.get("content")
        if not isinstance(content, str):
            raise bad_param("content", "is required: the text of the JSONL or CSV file")
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise bad_param("message", "is required: say what this version is for")
        if len(message) > APPLY_MESSAGE_CHARS:
            raise bad_param("message", f"must be at most {APPLY_MESSAGE_CHARS} characters")
        source = body.get("source", f"{name}.{fmt}")
        if not isinstance(source, str) or not source or len(source) > SOURCE_CHARS:
            raise bad_param("source", f"must be a file name of at most {SOURCE_CHARS} characters")
        scope = self._scope(principal, body.get("tenant"))
        items = await run_in_threadpool(_items, content, fmt, source)
        key = DatasetKey(scope, name)
        by = actor(request, principal, rid)

        def work() -> PushResult:
            return self._store.push(key, items, message=message.strip(), actor=by)

        result = await self._push(work)
        if result.created:
            log.info(
                "dataset %s: v%s (%s items) by %s",
                key.label(),
                result.version.number,
                result.version.items,
                by.name or "anonymous (keys off)",
            )
        return json_response({**result.version.to_json(), "created": result.created}, 200, rid)

    async def from_requests(self, request: Request) -> Response:
        """Recorded requests of a route into the dataset's next version
        (evals/from_requests.py, evals/adding.py)."""
        rid = new_request_id()
        principal = operator(self._keys, request, "add to datasets")
        name = DATASET.of(request)
        problem = name_problem("dataset", name)
        if problem is not None:
            raise bad_param("dataset", problem)
        body = await DATASET_FROM_REQUESTS.json(request)
        query = _harvest_query(body, principal)
        message = body.get("message", f"{query.route}: recorded requests")
        if not isinstance(message, str) or not message.strip():
            raise bad_param("message", "must say what this version is for")
        key = DatasetKey(self._scope(principal, body.get("tenant")), name)
        by = actor(request, principal, rid)

        result, found = await change(add_recorded, self._store, key, query, message.strip(), by)
        counts = {
            "considered": found.considered,
            "added": len(found.items),
            "duplicates": found.duplicates,
            "unusable": found.unusable,
        }
        if result is None:
            raise NotFound(
                f"no recorded request of route '{query.route}' gave an item "
                f"({found.considered} read, {found.unusable} without a usable body): "
                f"dataset '{name}' was not created",
                param="route",
            )
        view = {**result.version.to_json(), "created": result.created, **counts}
        return json_response(view, 200, rid)

    @staticmethod
    def _scope(principal: Principal, asked: Any) -> str:
        """Whose dataset a push makes: the caller's tenant's, unless an admin names one."""
        if asked is None:
            return principal.tenant
        if not isinstance(asked, str) or len(asked) > TENANT_CHARS:
            raise bad_param("tenant", f"must be a tenant name of at most {TENANT_CHARS} characters")
        if asked == principal.tenant or principal.is_admin:
            return asked
        whose = "the shared datasets" if asked == SHARED else f"tenant '{asked}'"
        raise Forbidden(f"a key of tenant '{principal.tenant}' may not push to {whose}")

    async def _push(self, work: Callable[[], PushResult]) -> PushResult:
        failure = "IntegrityError"
        for _ in range(_PUSH_ATTEMPTS):
            try:
                result: PushResult = await change(work, conflicts=True)
            except IntegrityError as exc:
                # another gateway pushed to this dataset meanwhile: the next attempt sees it
                failure = type(exc.orig).__name__
                continue
            return result
        raise Unavailable(
            f"the store refused this dataset {_PUSH_ATTEMPTS} times ({failure}); nothing changed",
            code="store_unavailable",
        )

    # -- reading -------------------------------------------------------------------------

    async def list_datasets(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read datasets")
        tenant = scoped_tenant(principal, LIST_DATASETS.arg(request, "tenant"))
        found = await run_in_threadpool(self._store.newest, tenant)
        return json_response({"data": [v.to_json() for v in found]})

    async def list_versions(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read datasets")
        key = await self._key(request, principal)
        found = await run_in_threadpool(self._store.versions, key)
        return json_response(
            {"dataset": key.name, "tenant": key.scope or None, "data": [v.to_json() for v in found]}
        )

    async def get_version(self, request: Request) -> Response:
        principal = reader(self._keys, request, "read datasets")
        number = GET_DATASET_VERSION.arg(request, "version")
        key = await self._key(request, principal)
        found = await self._version(key, number, "version")
        items = await run_in_threadpool(self._store.items, key, found.number)
        return json_response({**found.to_json(), "data": [item.to_json() for item in items]})

    async def diff(self, request: Request) -> Response:
        """?from=&to=: `to` defaults to the newest version, `from` to the one before it."""
        principal = reader(self._keys, request, "read datasets")
        first = DIFF_DATASET.arg(request, "from")
        second = DIFF_DATASET.arg(request, "to")
        key = await self._key(request, principal)
        after = await self._version(key, second, "to")
        if first is None:
            if after.number == 1:
                raise bad_param("from", "v1 has no previous version; give from=")
            first = after.number - 1
        before = await self._version(key, first, "from")
        old = await run_in_threadpool(self._store.items, key, before.number)
        new = await run_in_threadpool(self._store.items, key, after.number)
        changes = diff(old, new)
        return json_response(
            {
                "dataset": key.name,
                "tenant": key.scope or None,
                "from": before.number,
                "to": after.number,
                **changes.to_json(),
            }
        )


def _harvest_query(body: dict[str, Any], principal: Principal) -> RequestQuery:
    route = body.get("route")
    if not isinstance(route, str) or not route:
        raise bad_param("route", "is required: the route whose recorded requests to add")
    version = body.get("version")
    if version is not None:
        text = str(version)
        if not text.lstrip("v").isdigit():
            raise bad_param("version", f"'{version}' is not a version like v2 or 2")
        version = "v" + text.lstrip("v")
    if body.get("feedback") not in (None, "negative"):
        raise bad_param("feedback", "can only be 'negative'")
    if body.get("status") not in (None, "error"):
        raise bad_param("status", "can only be 'error'")
    since = None
    if body.get("since") is not None:
        span = parse_duration(str(body["since"]))
        if span is None:
            raise bad_param("since", f"'{body['since']}' is not a duration like 7d, 12h or 30m")
        since = datetime.now(UTC) - span
    limit = body.get("limit", _DEFAULT_HARVEST)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_REQUESTS:
        raise bad_param("limit", f"must be a whole number from 1 to {MAX_REQUESTS}")
    return RequestQuery(
        route=route,
        version=version,
        negative_feedback=body.get("feedback") == "negative",
        errors=body.get("status") == "error",
        since=since,
        limit=limit,
        tenant=None if principal.is_admin else principal.tenant,
    )
