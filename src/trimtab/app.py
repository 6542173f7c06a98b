"""Build the trimtab ASGI application from a configuration. Nothing happens at import."""

from __future__ import annotations

import gc
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import Route

from trimtab import __version__
from trimtab.alerts.runtime import AlertRuntime
from trimtab.api.alerts import AlertsAPI
from trimtab.api.audit import AuditAPI
from trimtab.api.breakers import BreakersAPI
from trimtab.api.cost_reports import CostReportsAPI
from trimtab.api.costs import CostsAPI
from trimtab.api.datasets import DatasetsAPI
from trimtab.api.errors import exception_handlers
from trimtab.api.eval_suites import EvalSuitesAPI
from trimtab.api.evals import EvalsAPI
from trimtab.api.health import HealthAPI, Lifecycle
from trimtab.api.incidents import IncidentsAPI
from trimtab.api.keys import KeysAPI
from trimtab.api.openapi import OpenAPIRoute
from trimtab.api.privacy import PrivacyAPI
from trimtab.api.rollouts import RolloutsAPI
from trimtab.api.routes import RoutesAPI
from trimtab.api.slos import SlosAPI
from trimtab.api.telemetry import TelemetryAPI
from trimtab.audit.log import AuditLog
from trimtab.auth.cache import KeyCache
from trimtab.auth.keyring import KeyRing
from trimtab.auth.store import KeyStore
from trimtab.config import Config
from trimtab.evals.online import OnlineScoring
from trimtab.evals.online_scorers import ONLINE_SCORING_OWNER
from trimtab.evals.runs import RunStore
from trimtab.evals.store import DatasetStore
from trimtab.evals.suite_store import SuiteStore
from trimtab.gateway.breakers import Breakers
from trimtab.gateway.catalog import Catalog
from trimtab.gateway.dispatch import Dispatcher
from trimtab.gateway.middleware import HotRoutes, LastResort
from trimtab.gateway.service import Gateway
from trimtab.gateway.switches import SwitchCache, SwitchStore
from trimtab.incidents.containment import Containment
from trimtab.incidents.pages import PageOpener
from trimtab.incidents.store import IncidentStore
from trimtab.policy.forecast_watch import ForecastWatch
from trimtab.policy.service import Policy
from trimtab.privacy.retention import RetentionJob
from trimtab.privacy.storage import body_policy, route_modes
from trimtab.providers.build import build_providers
from trimtab.registry.store import RouteStore
from trimtab.rollouts.controller import RolloutController
from trimtab.rollouts.store import RolloutStore
from trimtab.rollouts.table import RouteCache, RouteTable, warn_unserved
from trimtab.slo.evaluator import SloEvaluator, slo_ref, submitting
from trimtab.slo.gauges import SloGauges
from trimtab.slo.store import SloStore
from trimtab.state.factory import build_state
from trimtab.store.engine import make_engine, migrate
from trimtab.telemetry.journal import Journal
from trimtab.telemetry.metrics import GatewayMetrics, LabelValues
from trimtab.telemetry.otel import OtelExport, from_config
from trimtab.telemetry.recorder import Recorder
from trimtab.telemetry.spill import SpillFile
from trimtab.telemetry.store import TelemetryStore
from trimtab.web.console import Console, console_secret
from trimtab.web.context import Deps as ConsoleDeps


def create_app(config: Config, *, freeze_gc: bool = False) -> Starlette:
    """The gateway, the telemetry API and health endpoints, sharing one store.

    `freeze_gc` moves everything alive after start-up out of the collector's sight, so
    full collections only walk per-request garbage (set by `trimtab serve`).
    """
    engine = make_engine(config.store.url, config.store.pool_size)
    store = TelemetryStore(engine)
    metrics = GatewayMetrics(LabelValues.from_config(config))
    spill = SpillFile(config.telemetry.spill_path)
    t = config.telemetry
    journal = (
        Journal(t.journal_dir(), fsync_interval_s=t.journal_fsync_ms / 1000, also_sync=spill.sync)
        if t.journal
        else None
    )
    otel: OtelExport | None = from_config(config.otel)  # spans from the writer thread
    recorder = Recorder(
        store,
        spill,
        metrics,
        capacity=t.queue_size,
        batch_size=t.batch_size,
        flush_interval_s=t.flush_interval_s,
        write_retries=t.write_retries,
        journal=journal,
        export=otel.export if otel is not None else None,
    )
    providers = build_providers(config)
    retention = RetentionJob(engine, config.storage)  # storage.retention, with a lease
    keys = KeyRing(config.keys, stale_ttl_s=config.auth.stale_ttl_s)
    key_store = KeyStore(engine)
    key_cache = KeyCache(key_store, keys, refresh_s=config.auth.refresh_s)
    key_cache.register(metrics.registry)
    audit = AuditLog(engine)
    route_store = RouteStore(engine)
    route_table = RouteTable()  # what `route:NAME` resolves to, in memory
    # storage.bodies (privacy/storage.py): the tenant's, the route's, the gateway's
    recorder.scrub = body_policy(config.storage, route_modes(route_table))
    route_cache = RouteCache(route_store, route_table, refresh_s=config.rollouts.refresh_s)
    rollout_store = RolloutStore(engine)
    state = build_state(config.state, metrics.registry)

    def route_owner(labels: Mapping[str, str]) -> str | None:
        route = labels.get("route")
        entry = route_table.get(route, labels.get("tenant")) if route else None
        return entry.owner if entry is not None else None

    # alerts (docs/alerts.md): an alert's owner is its route's `owner:` unless it names one
    alerts = AlertRuntime(engine, config.alerts, metrics.registry, owners=route_owner)
    controller = RolloutController(
        rollout_store,
        route_cache.refresh,
        interval_s=config.rollouts.check_interval_s,
        signals=alerts.submit,  # its rollbacks and pauses: canary_rollback tickets
    )
    policy = Policy(config, state, engine, registry=metrics.registry, alert_signals=alerts.submit)
    # each budget's spend forecast, its cost_forecast signals to the alerts, every 15 min
    forecasts = ForecastWatch(engine, policy.report.budgets, policy.now, alerts.submit)
    catalog = Catalog(config, providers)
    # models switched to their fallbacks by an incident's containment (gateway/switches.py)
    switch_store = SwitchStore(engine)
    switch_cache = SwitchCache(switch_store, catalog, refresh_s=config.rollouts.refresh_s)
    breakers = Breakers(state, metrics)
    serving: dict[str, list[str]] = {}  # deployment -> the models whose pool holds it
    for target in catalog.targets():
        for dep in target.deployments:
            serving.setdefault(dep.key, []).append(target.name)
        if target.config.breaker is not None:
            for dep in target.deployments:
                breakers.watch(dep.key, target.config.breaker)
    # a trip's alert names the models the deployment serves: their incidents show it
    alerts.watch_breakers(lambda: breakers.known, breakers.status, serving)
    alerts.watch_problem("telemetry_spill", "ticket", recorder.problem)
    alerts.watch_problem("keystore", "page", key_cache.problem)
    incident_store = IncidentStore(engine)
    page_opener = PageOpener(incident_store)  # a page opens an incident (docs/incidents.md)
    # what an incident's responder does, from the API and the console alike
    containment = Containment(
        incident_store, route_store, rollout_store, key_store, keys, route_cache.refresh,
        switch_store, config.models, switch_cache.refresh,
    )  # fmt: skip
    alerts.on_changes(page_opener)
    dispatcher = Dispatcher(breakers, metrics, random.Random())
    gateway = Gateway(
        catalog,
        keys,
        recorder,
        dispatcher,
        state,
        metrics,
        policy,
        max_body_bytes=config.server.max_body_bytes,
        record_bodies=t.record_bodies,
        routes=route_table,
        guardrails=config.guardrails,  # the default policy (docs/guardrails.md)
        signals=alerts.submit,  # session ceilings: runaway_agent_loop
    )
    slo_store = SloStore(engine)
    slo_gauges = SloGauges(slo_store, metrics.registry)
    # a deleted SLO's burn alerts end, even one the evaluator said once more meanwhile
    alerts.retire_orphans(
        "slo_burn",
        lambda: [f"slo_burn/{slo_ref(row)}/" for row in slo_store.listed(None)],
        "the SLO no longer exists: it was deleted",
    )

    # suites with online: score sampled answers (evals/online.py); their judges call this
    # server's own gateway, in process, with a key only this process holds
    def judge_client(tenant: str, headers: Mapping[str, str]) -> httpx.AsyncClient:
        auth = {}
        if keys.enabled:
            key = keys.process_key(tenant, ONLINE_SCORING_OWNER)
            auth["authorization"] = f"Bearer {key}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://trimtab.internal",
            headers={**auth, **headers},
            trust_env=False,
        )

    online = OnlineScoring(
        engine, judges=judge_client, python_scorers=tuple(config.evals.python_scorers)
    )
    # one process at a time (a lease) judges every SLO and the candidates' own burn
    slo_evaluator = SloEvaluator(
        engine,
        submitting(alerts.submit),
        rollouts=rollout_store,
        on_rollback=route_cache.refresh,
        interval_s=config.slo.evaluate_interval_s,
    )
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(migrate, engine)
        await run_in_threadpool(recorder.replay)  # the journal a killed process left, the spill
        await key_cache.start()  # loads the store's keys, then refreshes in the background
        await route_cache.start()  # the same for the routes' stable versions
        await switch_cache.start()  # and for the models switched to their fallbacks
        warn_unserved(route_table, catalog.names())
        await controller.start()
        recorder.start()
        await state.start()
        await policy.start()  # after the spill replay: seeds budgets from the store
        slo_gauges.start()
        online.start()
        alerts.start()  # signals -> alerts -> the outbox, delivered in the background
        if config.budgets:
            forecasts.start()
        await slo_evaluator.start()
        retention.start()
        for provider in providers.values():
            await provider.start()
        lifecycle.ready = True
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            lifecycle.ready = False
            await gateway.drain()
            for provider in providers.values():
                await provider.close()
            await policy.close()  # pending budget alerts: recorded and sent, bounded wait
            await slo_evaluator.stop()  # gives its lease up: another process takes over
            await online.stop()
            await forecasts.stop()
            await alerts.stop()  # after the budget signals; the outbox resumes at the next start
            await page_opener.stop()  # the incidents the last pages open
            await state.close()
            # in-flight requests have finished by now (the server drains them first)
            await run_in_threadpool(recorder.stop)
            if otel is not None:
                await run_in_threadpool(otel.shutdown)  # the last spans, bounded wait
            await key_cache.stop()
            await controller.stop()
            await route_cache.stop()
            await switch_cache.stop()
            await slo_gauges.stop()
            await retention.stop()
            engine.dispose()

    hot = {  # POST only; HotRoutes answers them ahead of the router
        "/v1/chat/completions": gateway.chat_completions,
        "/v1/messages": gateway.messages,
        "/v1/embeddings": gateway.embeddings,
    }
    routes = [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in hot.items()),
        Route("/v1/models", gateway.models, methods=["GET"]),
        *TelemetryAPI(engine, store, keys).routes(),
        *CostsAPI(engine, policy, keys).routes(),
        *CostReportsAPI(engine, policy, keys).routes(),
        *BreakersAPI(breakers, keys).routes(),
        *KeysAPI(key_store, keys, audit).routes(),
        *RoutesAPI(route_store, route_cache, keys, audit, config.models).routes(),
        *RolloutsAPI(
            rollout_store, route_store, keys, config.rollouts.plans, route_cache.refresh
        ).routes(),
        *DatasetsAPI(DatasetStore(engine), keys).routes(),
        *EvalsAPI(
            RunStore(engine), DatasetStore(engine), route_store, keys, config.models
        ).routes(),
        *SlosAPI(
            slo_store, route_store, keys, audit, alerts.service, alerts.changed, slo_gauges
        ).routes(),  # a deleted SLO's alerts resolve with it
        *IncidentsAPI(
            incident_store, route_store, keys, DatasetStore(engine), containment
        ).routes(),
        *AlertsAPI(
            alerts.service,
            keys,
            audit,
            lambda tenant: {k.name for k in route_table.entries() if k.tenant == tenant},
            alerts.changed,  # an acknowledgement reaches incidents and the outbox at once
        ).routes(),
        *EvalSuitesAPI(SuiteStore(engine), route_store, keys, audit, online).routes(),
        *AuditAPI(audit, keys).routes(),
        *PrivacyAPI(engine, audit, keys).routes(),  # erasure and export (privacy/)
        *HealthAPI(
            lifecycle,
            store,
            recorder,
            spill,
            metrics,
            [key_cache.problem, route_cache.problem],
            keys=keys,
            metrics_public=config.metrics.public,
        ).routes(),
    ]
    routes.append(OpenAPIRoute(routes, __version__).route())  # describes the list it is in
    console = ConsoleDeps(
        engine, store, keys, key_store, audit, route_store, rollout_store,
        config.rollouts.plans, slo_store, RunStore(engine), DatasetStore(engine), policy,
        route_cache.refresh, slo_gauges, alerts=alerts.service, alerts_changed=alerts.changed,
        tenant_routes=lambda t: {k.name for k in route_table.entries() if k.tenant == t},
        incidents=incident_store, containment=containment,
    )  # fmt: skip
    served = [*routes, *Console(console, console_secret(config)).routes()]  # /ui after the API

    app = Starlette(
        routes=served,
        lifespan=lifespan,
        # any other exception: LastResort answers it (500, or 503 for the store) and keeps
        # the connection open, where Starlette's own handler would re-raise
        middleware=[Middleware(LastResort), Middleware(HotRoutes, routes=hot)],
        exception_handlers=exception_handlers(),  # api/errors.py: the one error path
    )
    app.state.recorder = recorder
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.policy = policy
    app.state.routes = route_table
    app.state.alerts = alerts
    app.state.slo_evaluator = slo_evaluator
    app.state.slo_gauges = slo_gauges
    return app
