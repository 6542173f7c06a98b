"""Every operation of the control-plane API, declared once (api/schema.py); the dataset and
eval-run ones are in api/eval_endpoints.py.

The handler modules route and parse with these; the OpenAPI document is made of them.
Parameters are listed in the order the handler reads them, which is the order their
errors are reported in.
"""

from __future__ import annotations

from trimtab.api import models as m
from trimtab.api import slo_views as sv
from trimtab.api import views as v
from trimtab.api.schema import (
    Body,
    Endpoint,
    choice,
    enum,
    integer,
    status,
    text,
    time,
    version,
    window,
)
from trimtab.telemetry.costs import COST_GROUPS
from trimtab.telemetry.queries import MAX_SEARCH, SEARCH_SCAN
from trimtab.telemetry.rollups import GROUPABLE
from trimtab.types import MODEL_CALLERS, OPERATORS, READERS

ADMINS: frozenset[str] = frozenset({"admin"})
ROUTES_APPLY_BYTES = 1024 * 1024
MOVES = ("pause", "resume", "promote", "abort")

# -- shared parameters --------------------------------------------------------------------

TENANT = text(
    "tenant",
    "Limit to this tenant (a non-admin key may only name its own; empty: every tenant the "
    "key may read)",
    keep_empty=True,
)
ROUTE = text("route", "The route's name", where="path")
ROUTE_TENANT = text(
    "tenant",
    "Whose route NAME is: a tenant's (an admin may name any), empty for the shared one; "
    "absent: the caller's tenant's, else the shared one",
    keep_empty=True,
)
LIMIT = integer("limit", "Page size", default=50, low=1, high=1000)
CURSOR = text("cursor", "The next_cursor of the previous page")


# -- telemetry ----------------------------------------------------------------------------

LIST_REQUESTS = Endpoint(
    "GET",
    "/api/requests",
    "listRequests",
    "telemetry",
    "Recorded requests, newest first, one page at a time",
    READERS,
    v.RequestList,
    params=(
        TENANT,
        time("since", "Started at or after"),
        time("until", "Started before"),
        status("An HTTP status, 'error' (>= 400) or 'ok' (< 400)"),
        *(
            text(name, f"Only requests with this {name}")
            for name in ("model", "provider", "user", "session", "feature", "route", "version")
        ),
        text(
            "q",
            "Text in the stored request or answer body, case-insensitive (at most "
            f"{MAX_SEARCH} characters). A page holds the matches among the next "
            f"{SEARCH_SCAN:,} requests the other filters select, newest first, and "
            "next_cursor goes on after the last one read: a page may be short, or empty, "
            "and still have a next one. Bodies are searched as stored (storage.bodies: a "
            "redacted body as redacted; hashed or none: not at all)",
        ),
        LIMIT,
        CURSOR,
    ),
)
GET_REQUEST = Endpoint(
    "GET",
    "/api/requests/{request_id}",
    "getRequest",
    "telemetry",
    "One recorded request (with its bodies when telemetry.record_bodies is on)",
    READERS,
    v.RequestView,
    params=(text("request_id", "The x-trimtab-request-id of the request", where="path"),),
    errors=(404,),
)
SUMMARY = Endpoint(
    "GET",
    "/api/metrics/summary",
    "getSummary",
    "telemetry",
    "Counts, error rate, latency and TTFT quantiles, tokens and cost over a window",
    READERS,
    v.MetricsSummary,
    params=(
        window("1h", "How far back"),
        choice("group_by", "One group per value of", GROUPABLE, "model"),
        TENANT,
    ),
)

# -- costs --------------------------------------------------------------------------------

COSTS = Endpoint(
    "GET",
    "/api/costs",
    "getCosts",
    "costs",
    "Spend over a window, grouped",
    READERS,
    v.CostsView,
    params=(
        window("30d", "How far back"),
        choice("group_by", "One group per value of", COST_GROUPS, "model"),
        TENANT,
    ),
)
BUDGETS = Endpoint(
    "GET",
    "/api/budgets",
    "listBudgets",
    "costs",
    "Every configured budget with this period's spend",
    READERS,
    v.BudgetsView,
    params=(TENANT,),
)
BUDGET_EVENTS = Endpoint(
    "GET",
    "/api/budget-events",
    "listBudgetEvents",
    "costs",
    "Budget thresholds crossed, newest first",
    READERS,
    v.BudgetEvents,
    params=(
        TENANT,
        time("since", "At or after"),
        integer("limit", "At most this many", default=100, low=1, high=1000),
    ),
)

# -- breakers -----------------------------------------------------------------------------

LIST_BREAKERS = Endpoint(
    "GET",
    "/api/breakers",
    "listBreakers",
    "gateway",
    "Each deployment's circuit breaker",
    READERS,
    v.BreakerList,
)

# -- keys ---------------------------------------------------------------------------------

KEY_ID = text("key_id", "The key's id (key_...)", where="path")

CREATE_KEY = Endpoint(
    "POST",
    "/api/keys",
    "createKey",
    "keys",
    "Create a key; the answer is the only time its secret is shown",
    ADMINS,
    v.CreatedKey,
    status=201,
    body=Body(m.KeyCreate),
    errors=(409,),
    description="409 keys_disabled: the configuration has no 'keys' list.",
)
LIST_KEYS = Endpoint(
    "GET",
    "/api/keys",
    "listKeys",
    "keys",
    "The configured keys and the stored ones (a non-admin sees its tenant's)",
    READERS,
    v.KeyList,
    params=(text("tenant", "Only this tenant's keys (a non-admin may only name its own)"),),
)
GET_KEY = Endpoint(
    "GET",
    "/api/keys/{key_id}",
    "getKey",
    "keys",
    "One key (another tenant's answers 404)",
    READERS,
    v.KeyView,
    params=(KEY_ID,),
    errors=(404,),
)
REVOKE_KEY = Endpoint(
    "DELETE",
    "/api/keys/{key_id}",
    "revokeKey",
    "keys",
    "Revoke a stored key",
    ADMINS,
    v.KeyView,
    params=(KEY_ID,),
    errors=(404, 409),
    description="409: keys are off, the key is from the configuration, or already revoked.",
)

# -- routes -------------------------------------------------------------------------------

APPLY_ROUTES = Endpoint(
    "POST",
    "/api/routes/apply",
    "applyRoutes",
    "routes",
    "Apply a routes file: each changed route gets a new version",
    OPERATORS,
    v.ApplyView,
    body=Body(m.RoutesApply, max_bytes=ROUTES_APPLY_BYTES),
    description="Give either `yaml` (the text of a routes file) or `routes` (its data).",
)
LIST_ROUTES = Endpoint(
    "GET",
    "/api/routes",
    "listRoutes",
    "routes",
    "The routes this key may see: shared ones and its tenant's",
    READERS,
    v.RouteList,
)
GET_ROUTE = Endpoint(
    "GET",
    "/api/routes/{route}",
    "getRoute",
    "routes",
    "A route and its stable version",
    READERS,
    v.RouteDetail,
    params=(ROUTE, ROUTE_TENANT),
    errors=(404,),
)
LIST_VERSIONS = Endpoint(
    "GET",
    "/api/routes/{route}/versions",
    "listVersions",
    "routes",
    "A route's versions, oldest first",
    READERS,
    v.VersionList,
    params=(ROUTE, ROUTE_TENANT),
    errors=(404,),
)
GET_VERSION = Endpoint(
    "GET",
    "/api/routes/{route}/versions/{number}",
    "getVersion",
    "routes",
    "One version with its bundle",
    READERS,
    v.VersionView,
    params=(
        version("number", "The version, as v2 or 2", where="path", says="version"),
        ROUTE,
        ROUTE_TENANT,
    ),
    errors=(404,),
)
DIFF = Endpoint(
    "GET",
    "/api/routes/{route}/diff",
    "diffVersions",
    "routes",
    "What changed between two versions",
    READERS,
    v.DiffView,
    params=(
        version("from", "The older version (default: `to`'s parent)"),
        version("to", "The newer version (default: the newest)"),
        ROUTE,
        ROUTE_TENANT,
    ),
    errors=(404,),
)
TIMELINE = Endpoint(
    "GET",
    "/api/routes/{route}/timeline",
    "getTimeline",
    "routes",
    "A route's events, oldest first",
    READERS,
    v.Timeline,
    params=(
        integer("after", "Events after this event id", default=0, low=0, high=2**62),
        integer("limit", "Page size", default=200, low=1, high=1000),
        ROUTE,
        ROUTE_TENANT,
    ),
    errors=(404,),
)

# -- rollouts -----------------------------------------------------------------------------

_SHARED = "A shared route's rollouts are an admin's."

START_ROLLOUT = Endpoint(
    "POST",
    "/api/routes/{route}/rollouts",
    "startRollout",
    "rollouts",
    "Start a canary rollout of a candidate version",
    OPERATORS,
    v.RolloutView,
    status=201,
    params=(ROUTE, ROUTE_TENANT),
    body=Body(m.RolloutStart, allow_empty=True),
    errors=(404, 409),
    description=_SHARED,
)
ROLLOUT_STATUS = Endpoint(
    "GET",
    "/api/routes/{route}/rollout",
    "getRollout",
    "rollouts",
    "The route's latest rollout",
    READERS,
    v.RolloutView,
    params=(ROUTE, ROUTE_TENANT),
    errors=(404,),
)
ROLLOUT_PLAN = text("plan", "The plan's name (default: default)")
ROLLOUT_FORECAST = Endpoint(
    "GET",
    "/api/routes/{route}/forecast",
    "forecastRollout",
    "rollouts",
    "What a plan is expected to do on the route's recent traffic, before a rollout",
    READERS,
    v.RolloutForecastView,
    params=(ROLLOUT_PLAN, ROUTE, ROUTE_TENANT),
    errors=(404,),
    description=(
        "The route's stable version over the last hour (the last day when the hour has "
        "fewer than 500 requests), the candidate taken to match it; each stage's expected "
        "duration and canary requests, when it would promote, and a warning when the plan "
        "cannot decide within its durations (docs/canary.md)."
    ),
)
MOVE_ROLLOUT = Endpoint(
    "POST",
    "/api/routes/{route}/rollout/{move}",
    "moveRollout",
    "rollouts",
    "Pause, resume, promote or abort the rollout in progress",
    OPERATORS,
    v.RolloutView,
    params=(enum("move", "What to do", MOVES, where="path"), ROUTE, ROUTE_TENANT),
    body=Body(m.MoveBody, allow_empty=True),
    errors=(404, 409),
    description=_SHARED,
)
ROLLBACK = Endpoint(
    "POST",
    "/api/routes/{route}/rollback",
    "rollBack",
    "rollouts",
    "Make an earlier version stable again",
    OPERATORS,
    v.RollbackView,
    params=(ROUTE, ROUTE_TENANT),
    body=Body(m.RollbackBody, allow_empty=True),
    errors=(404, 409),
    description=f"{_SHARED} Overriding the release gate is an admin's.",
)
ATTEST = Endpoint(
    "POST",
    "/api/routes/{route}/versions/{version}/attestations",
    "attestVersion",
    "rollouts",
    "Record evidence (an eval, a red-team run, an approval) on a version",
    OPERATORS,
    v.AttestationView,
    status=201,
    params=(ROUTE, ROUTE_TENANT, version("version", "The version, as v2 or 2", where="path")),
    body=Body(m.AttestBody, allow_empty=True),
    errors=(404,),
    description=f"{_SHARED} The key needs an owner.",
)
FEEDBACK = Endpoint(
    "POST",
    "/api/feedback",
    "addFeedback",
    "rollouts",
    "Score a recorded request (0..1, or thumbs up/down)",
    MODEL_CALLERS | READERS,
    v.FeedbackView,
    status=201,
    body=Body(m.FeedbackBody, allow_empty=True),
    errors=(404,),
)

# -- audit --------------------------------------------------------------------------------

LIST_AUDIT = Endpoint(
    "GET",
    "/api/audit",
    "listAudit",
    "audit",
    "The audit log, newest first",
    ADMINS,
    v.AuditList,
    params=(
        time("since", "At or after"),
        time("until", "Before"),
        *(
            text(name, f"Only events with this {name}")
            for name in ("action", "actor", "tenant", "target")
        ),
        LIMIT,
        CURSOR,
    ),
)


# -- SLOs ---------------------------------------------------------------------------------

SLO = text("slo", "The SLO's name", where="path")
SLO_TENANT = text(
    "tenant",
    "Whose SLO: a tenant's (a non-admin may name only its own), empty for an admin's shared "
    "one; absent: the caller's",
    keep_empty=True,
)
APPLY_SLOS = Endpoint(
    "POST",
    "/api/slos/apply",
    "applySlos",
    "slos",
    "Apply the `slos:` section of a file: each changed SLO is replaced",
    OPERATORS,
    sv.SloApplyView,
    body=Body(m.SlosApply, max_bytes=ROUTES_APPLY_BYTES),
    description=(
        "400 invalid_slos: every problem, each naming the file and the key; nothing is "
        "stored. The file's `routes:` and `evals:` sections are left to their endpoints. A "
        "non-admin's SLOs are its tenant's and judge only its tenant's traffic. An "
        "`eval_score` SLI's suite (`suite_scope` `shared` or `tenant`; without it, the SLO's "
        "tenant's own suite of that name, else the shared one, stored as the SLO's "
        "`suite_scope`) must exist and score production answers (`online:`) with its "
        "scorer; the answer names the scope each SLO's SLI reads (`suite_scope`: `tenant` "
        "or `shared`, and `shared` for an SLO without a tenant; null for an SLI naming no "
        "suite), a dry run's that of the definition it would store. With "
        "`prune`, the caller's SLOs (an admin's: the shared ones) the file does not name "
        "are deleted in the same transaction, each audited `slo.delete`, their open alerts "
        "resolved; with `dry_run`, nothing changes and the answer says what would."
    ),
)
LIST_SLOS = Endpoint(
    "GET",
    "/api/slos",
    "listSlos",
    "slos",
    "Each SLO's status: SLI, error budget, burn rates and alert verdicts",
    READERS,
    sv.SloList,
    params=(text("route", "Only the SLOs of this route"), SLO_TENANT),
)
GET_SLO = Endpoint(
    "GET",
    "/api/slos/{slo}",
    "getSlo",
    "slos",
    "One SLO's status",
    READERS,
    sv.SloStatusView,
    params=(SLO, SLO_TENANT),
    errors=(404,),
)
DELETE_SLO = Endpoint(
    "DELETE",
    "/api/slos/{slo}",
    "deleteSlo",
    "slos",
    "Delete an SLO; audited, its open alerts resolved",
    OPERATORS,
    sv.RemovedSlo,
    params=(SLO, SLO_TENANT),
    errors=(404,),
    description=(
        "An admin deletes a shared SLO (or, with `tenant=T`, tenant T's); an operator its "
        "own tenant's. 404 slo_not_found: the scope has no SLO of that name (another "
        "tenant's SLO is not found either). Its open burn alerts are resolved with the "
        "reason in the same transaction; the evaluator no longer judges it."
    ),
)
