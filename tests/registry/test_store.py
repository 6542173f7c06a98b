"""Applying routes to the store: versions only on change, numbered per route, a timeline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from tests.registry.support import ACME_ROUTE, ADMIN, GLOBEX, OPERATOR, SHARED_ROUTE, routes_file
from trimtab.registry.apply import RouteForbidden
from trimtab.registry.scope import RouteKey
from trimtab.registry.store import RouteStore
from trimtab.registry.timeline import append_event
from trimtab.rollouts.table import RouteCache, RouteTable
from trimtab.store.tables import route_versions


@pytest.fixture
def store(engine: Engine) -> RouteStore:
    return RouteStore(engine)


def count_versions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(route_versions)).scalar_one())


def test_first_apply_creates_v1_and_makes_it_stable(store: RouteStore) -> None:
    at = datetime(2026, 11, 28, 12, tzinfo=UTC)
    [r] = store.apply(routes_file(), applier=ADMIN, message="launch", now=at)
    assert (r.status, r.version, r.parent, r.stable_version, r.new_route) == (
        "created",
        1,
        None,
        1,
        True,
    )
    assert r.tenant is None  # an admin's route without a tenant is shared
    assert r.variables == ("policy", "question")
    route = store.get_route(SHARED_ROUTE)
    assert route is not None
    assert (route.stable_version, route.latest_version, route.created_by) == (1, 1, "ops@acme")
    [v1] = store.versions(SHARED_ROUTE)
    assert (v1.number, v1.author, v1.message, v1.parent) == (1, "ops@acme", "launch", None)
    assert v1.created_at == at
    assert v1.digest == routes_file()[0].bundle.digest
    assert v1.bundle == routes_file()[0].bundle


def test_applying_the_same_content_creates_no_version(store: RouteStore, engine: Engine) -> None:
    store.apply(routes_file(), applier=OPERATOR, message="launch")
    [again] = store.apply(routes_file(), applier=OPERATOR, message="again")
    assert (again.status, again.version, again.updated) == ("unchanged", 1, {})
    assert count_versions(engine) == 1
    assert [e.kind for e in store.events(ACME_ROUTE)] == ["apply"]


def test_new_content_creates_the_next_version_and_stable_stays(store: RouteStore) -> None:
    store.apply(routes_file(), applier=OPERATOR, message="launch")
    [v2] = store.apply(routes_file("Policy v2: {{policy}}"), applier=OPERATOR, message="tone")
    assert (v2.status, v2.version, v2.parent, v2.stable_version, v2.same_as) == (
        "created",
        2,
        1,
        1,
        None,
    )
    # back to v1's content: a new version v3, noted as the same as v1
    [v3] = store.apply(routes_file(), applier=OPERATOR, message="revert the tone")
    assert (v3.version, v3.parent, v3.same_as, v3.digest) == (
        3,
        2,
        1,
        routes_file()[0].bundle.digest,
    )
    assert [v.number for v in store.versions(ACME_ROUTE)] == [3, 2, 1]
    assert store.versions(ACME_ROUTE)[1].author == "ml@acme"
    route = store.get_route(ACME_ROUTE)
    assert route is not None and (route.stable_version, route.latest_version) == (1, 3)


def test_owner_and_risk_tier_update_without_a_version(store: RouteStore) -> None:
    store.apply(routes_file(), applier=ADMIN, message="launch")
    [r] = store.apply(routes_file(owner="new@a", tier=3), applier=ADMIN, message="handover")
    assert (r.status, r.version) == ("updated", 1)
    assert r.updated == {"owner": ["o@a", "new@a"], "risk_tier": [2, 3]}
    route = store.get_route(SHARED_ROUTE)
    assert route is not None and (route.owner, route.risk_tier) == ("new@a", 3)
    events = store.events(SHARED_ROUTE)
    assert [(e.kind, e.version, e.reason) for e in events] == [
        ("apply", 1, "launch"),
        ("update", 1, "handover"),
    ]
    assert events[1].detail == {"updated": {"owner": ["o@a", "new@a"], "risk_tier": [2, 3]}}


def test_versions_are_numbered_per_route(store: RouteStore) -> None:
    both = routes_file(route="a") + routes_file(route="b")
    assert [(r.route, r.version) for r in store.apply(both, applier=ADMIN, message="m")] == [
        ("a", 1),
        ("b", 1),
    ]
    changed = routes_file("x {{policy}}", route="b")
    assert store.apply(changed, applier=ADMIN, message="m")[0].version == 2
    assert [r.name for r in store.list_routes("acme", admin=True)] == ["a", "b"]
    assert [r.latest_version for r in store.list_routes("acme", admin=True)] == [1, 2]


def test_the_timeline_records_who_and_why(store: RouteStore) -> None:
    store.apply(routes_file(), applier=ADMIN, message="launch")
    store.apply(routes_file("v2 {{policy}}"), applier=ADMIN, message="shorter")
    events = store.events(SHARED_ROUTE)
    assert [(e.kind, e.version, e.actor, e.reason) for e in events] == [
        ("apply", 1, "ops@acme", "launch"),
        ("apply", 2, "ops@acme", "shorter"),
    ]
    assert events[0].detail == {
        "digest": routes_file()[0].bundle.digest,
        "parent": None,
        "stable": True,
    }
    assert events[1].detail is not None and events[1].detail["stable"] is False
    assert [e.kind for e in store.events(SHARED_ROUTE, after=events[0].id)] == ["apply"]
    with store.engine.begin() as conn:  # how a rollout controller adds its own kinds
        append_event(conn, SHARED_ROUTE, "pause", version=2, actor="x", reason="y")
    assert [e.kind for e in store.events(SHARED_ROUTE)][-1] == "pause"


def test_tenants(store: RouteStore) -> None:
    # an operator's route belongs to its tenant; an admin's is shared unless the file says
    [mine] = store.apply(routes_file(route="mine"), applier=OPERATOR, message="m")
    assert mine.tenant == "acme"
    [shared] = store.apply(routes_file(route="shared"), applier=ADMIN, message="m")
    assert shared.tenant is None
    [theirs] = store.apply(
        routes_file(route="theirs", extra="    tenant: globex\n"), applier=ADMIN, message="m"
    )
    assert theirs.tenant == "globex"
    assert [r.name for r in store.list_routes("acme", admin=False)] == ["mine", "shared"]
    assert [r.name for r in store.list_routes("globex", admin=False)] == ["shared", "theirs"]
    with pytest.raises(RouteForbidden, match="only a key with role 'admin' may change it"):
        store.apply(routes_file("x {{policy}}", route="shared"), applier=OPERATOR, message="m")
    # names are per tenant: globex's "mine" is globex's own route, acme's stays as it is
    [globex_mine] = store.apply(
        routes_file("x {{policy}}", route="mine"), applier=GLOBEX, message="m"
    )
    assert (globex_mine.tenant, globex_mine.version, globex_mine.new_route) == ("globex", 1, True)
    acme_mine = store.get_route(RouteKey("acme", "mine"))
    assert acme_mine is not None and acme_mine.latest_version == 1
    assert [v.digest for v in store.versions(RouteKey("acme", "mine"))] == [mine.digest]
    with pytest.raises(RouteForbidden, match="may only create routes of its own tenant"):
        store.apply(
            routes_file(route="new", extra="    tenant: globex\n"), applier=OPERATOR, message="m"
        )
    # an admin names the tenant in the file to change a tenant's route
    [changed] = store.apply(
        routes_file("y {{policy}}", route="mine", extra="    tenant: acme\n"),
        applier=ADMIN,
        message="m",
    )
    assert (changed.tenant, changed.version, changed.new_route) == ("acme", 2, False)


def test_a_tenants_own_route_shadows_the_shared_one(store: RouteStore) -> None:
    store.apply(routes_file("shared {{policy}}"), applier=ADMIN, message="m")
    # only an admin creates a tenant's route that shadows a shared one
    with pytest.raises(RouteForbidden, match="shared by every tenant"):
        store.apply(routes_file("own {{policy}}"), applier=OPERATOR, message="m")
    store.apply(
        routes_file("own {{policy}}", extra="    tenant: acme\n"), applier=ADMIN, message="m"
    )
    acme = store.resolve("support-answer", "acme", admin=False)
    globex = store.resolve("support-answer", "globex", admin=False)
    assert acme is not None and acme.tenant == "acme"
    assert globex is not None and globex.tenant is None
    # asking for a scope: one's own, the shared one; another tenant's reads as absent
    shared = store.resolve("support-answer", "acme", admin=False, asked="")
    assert shared is not None and shared.tenant is None
    assert store.resolve("support-answer", "globex", admin=False, asked="acme") is None
    picked = store.resolve("support-answer", "globex", admin=True, asked="acme")
    assert picked is not None and picked.tenant == "acme"
    names = [(r.name, r.tenant) for r in store.list_routes("acme", admin=False)]
    assert names == [("support-answer", None), ("support-answer", "acme")]


def test_an_apply_is_all_or_nothing(store: RouteStore, engine: Engine) -> None:
    store.apply(routes_file(route="shared"), applier=ADMIN, message="m")
    both = routes_file(route="aaa") + routes_file("x {{policy}}", route="shared")
    with pytest.raises(RouteForbidden):
        store.apply(both, applier=OPERATOR, message="m")
    assert store.get_route(RouteKey("acme", "aaa")) is None
    assert count_versions(engine) == 1


async def test_the_cache_serves_stable_versions(store: RouteStore) -> None:
    table = RouteTable()
    cache = RouteCache(store, table, refresh_s=60)
    assert await cache.refresh()
    assert table.names() == []
    store.apply(routes_file(), applier=ADMIN, message="launch")
    store.apply(routes_file(route="acme-only"), applier=OPERATOR, message="m")
    assert await cache.refresh()
    assert table.names() == ["acme-only", "support-answer"]
    assert table.names("globex") == ["support-answer"]
    v1 = table.version_for("support-answer", sticky_key="user-1", tenant="acme")
    assert (v1.number, v1.label, v1.digest) == (1, "v1", routes_file()[0].bundle.digest)
    store.apply(routes_file("v2 {{policy}}"), applier=ADMIN, message="candidate")
    before = table.entries()
    assert await cache.refresh()
    # v2 is not stable: the same version object keeps serving (its bundle was not reloaded)
    assert table.version_for("support-answer", None) is v1
    assert table.entries() is not before  # a fresh snapshot was installed
    assert cache.problem() is None
    with pytest.raises(KeyError):
        table.version_for("nope", None)
