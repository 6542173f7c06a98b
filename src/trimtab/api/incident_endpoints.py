"""The incident operations of the control-plane API, declared once (api/schema.py), with
their bodies and responses."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, get_args

from pydantic import Field
from typing_extensions import TypedDict

from trimtab.api.endpoints import LIMIT
from trimtab.api.params import MAX_TEXT
from trimtab.api.schema import Body, Endpoint, choice, text
from trimtab.incidents.model import STATES, CustomerImpact, IncidentType, RuleKind
from trimtab.types import OPERATORS, READERS

TITLE_CHARS = 512
REF_CHARS = 512
POSTMORTEM_BYTES = 512 * 1024
NAMES = 50  # routes, models or tenants an incident may name

# the incident's vocabulary is the model's (incidents/model.py), named as the bodies read it
IncidentTypeName = IncidentType
ImpactName = CustomerImpact
RuleKindName = RuleKind
ActionName = Literal[
    "acknowledge",
    "mitigate",
    "resolve",
    "reopen",
    "rollback",
    "pause_rollout",
    "revoke_key",
    "block_tenant",
    "switch_model",
    "restore_model",
]
ACTIONS: tuple[str, ...] = get_args(ActionName)
STATE_MOVES = ("acknowledge", "mitigate", "resolve", "reopen")
CONTAINMENTS = tuple(a for a in ACTIONS if a not in STATE_MOVES)

Name = Annotated[str, Field(min_length=1, max_length=256)]
Message = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]

# -- bodies --------------------------------------------------------------------------------


class IncidentOpen(TypedDict):
    message: Annotated[Message, Field(description="what is happening: the incident's summary")]
    type: IncidentTypeName
    title: NotRequired[Annotated[str, Field(min_length=1, max_length=TITLE_CHARS)]]
    severity: NotRequired[
        Annotated[int, Field(ge=1, le=4, description="given: wins over the matrix's")]
    ]
    customer_impact: NotRequired[
        Annotated[ImpactName, Field(description="absent: the type's default")]
    ]
    routes: NotRequired[Annotated[list[Name], Field(max_length=NAMES)]]
    models: NotRequired[Annotated[list[Name], Field(max_length=NAMES)]]
    tenants: NotRequired[Annotated[list[Name], Field(max_length=NAMES)]]


class IncidentNote(TypedDict):
    message: Message


class IncidentAction(TypedDict):
    action: ActionName
    message: NotRequired[Annotated[Message, Field(description="why; rollbacks need one")]]
    route: NotRequired[Annotated[Name, Field(description="absent: the incident's only route")]]
    to: NotRequired[Annotated[str, Field(description="rollback: the version, e.g. v1")]]
    key_id: NotRequired[Annotated[Name, Field(description="revoke_key: the key")]]
    tenant: NotRequired[Annotated[Name, Field(description="block_tenant: whose keys")]]
    model: NotRequired[
        Annotated[Name, Field(description="switch_model, restore_model: absent: the only one")]
    ]


class IncidentSeverity(TypedDict):
    severity: Annotated[int, Field(ge=1, le=4, description="1 the worst")]
    message: Annotated[Message, Field(description="why it changes")]


class IncidentPostmortem(TypedDict):
    markdown: NotRequired[
        Annotated[str, Field(min_length=1, description="an edited postmortem; absent: a draft")]
    ]


class IncidentRule(TypedDict):
    kind: RuleKindName
    message: Message
    ref: NotRequired[Annotated[str, Field(min_length=1, max_length=REF_CHARS)]]
    from_failed: NotRequired[
        Annotated[
            bool,
            Field(description="dataset_case: push the incident's failed requests as a dataset"),
        ]
    ]
    dataset: NotRequired[Annotated[Name, Field(description="from_failed: the dataset's name")]]


class IncidentClose(TypedDict):
    message: NotRequired[Message]


# -- responses ----------------------------------------------------------------------------


class IncidentRuleView(TypedDict):
    id: int
    kind: str
    ref: str
    message: str
    detail: dict[str, Any] | None
    created_at: str
    created_by: str | None


class IncidentImpactView(TypedDict):
    start: str
    end: str
    requests: int
    failed: int
    tenants: int
    tenants_failed: int
    users_failed: int
    spend_usd: float
    failed_spend_usd: float
    traffic_share: float | None
    tenant_share: float | None
    blast_radius: Literal["contained", "limited", "broad", "widespread"] | None


class IncidentView(TypedDict):
    id: str
    tenant: str | None
    title: str
    type: str
    severity: int
    customer_impact: str
    state: Literal["open", "mitigated", "resolved", "closed"]
    routes: list[str]
    models: list[str]
    tenants: list[str]
    summary: str | None
    opened_by: str | None
    opened_at: str
    first_bad_at: str | None
    detected_at: str
    acknowledged_at: str | None
    mitigated_at: str | None
    resolved_at: str | None
    closed_at: str | None
    dedup_key: str | None
    durations_s: dict[str, float | None]
    postmortem_at: str | None
    rules: list[IncidentRuleView]
    missing_to_close: list[str]
    impact: NotRequired[IncidentImpactView]


class IncidentList(TypedDict):
    data: list[IncidentView]


class TimelineEntryView(TypedDict):
    at: str
    source: Literal["route", "audit", "budget", "alert", "telemetry", "incident"]
    kind: str
    summary: str
    actor: str | None
    route: str | None
    detail: dict[str, Any] | None


class IncidentTimeline(TypedDict):
    incident: str
    data: list[TimelineEntryView]


class IncidentEventView(TypedDict):
    id: int
    at: str
    kind: str
    actor: str | None
    message: str | None
    detail: dict[str, Any] | None


class IncidentActed(TypedDict):
    incident: IncidentView
    event: IncidentEventView
    result: dict[str, Any]


class IncidentPostmortemView(TypedDict):
    incident: str
    markdown: str
    recorded: bool
    recorded_at: str | None


class IncidentRuleAdded(TypedDict):
    incident: IncidentView
    rule: IncidentRuleView


# -- declarations -------------------------------------------------------------------------

INCIDENT = text("incident", "The incident's id (inc_...)", where="path")
INCIDENT_TENANT = text(
    "tenant",
    "Whose incidents: a tenant's (a non-admin may name only its own), empty for the shared "
    "ones; absent: every incident the key may read",
    keep_empty=True,
)
_STATES = ("any", *STATES)

OPEN_INCIDENT = Endpoint(
    "POST",
    "/api/incidents",
    "openIncident",
    "incidents",
    "Open an incident: first bad minute, impact and severity measured from the rollups",
    OPERATORS,
    IncidentView,
    status=201,
    body=Body(IncidentOpen),
    errors=(404,),
    description=(
        "The severity is the matrix's (customer impact x blast radius, the larger of the "
        "failed share of the routes' requests and of their tenants over the incident's "
        "window) unless given. A route it names must exist (404). A non-admin's incident "
        "belongs to its tenant and measures that tenant's traffic only."
    ),
)
LIST_INCIDENTS = Endpoint(
    "GET",
    "/api/incidents",
    "listIncidents",
    "incidents",
    "Incidents, newest first",
    READERS,
    IncidentList,
    params=(
        choice("state", "Only incidents in this state", _STATES, "any"),
        text("route", "Only incidents naming this route"),
        INCIDENT_TENANT,
        LIMIT,
    ),
)
GET_INCIDENT = Endpoint(
    "GET",
    "/api/incidents/{incident}",
    "getIncident",
    "incidents",
    "One incident with its impact measured now and its durations",
    READERS,
    IncidentView,
    params=(INCIDENT,),
    errors=(404,),
)
INCIDENT_TIMELINE = Endpoint(
    "GET",
    "/api/incidents/{incident}/timeline",
    "getIncidentTimeline",
    "incidents",
    "The incident's timeline: route changes, rollout moves, key changes, budget events, "
    "the first bad minute and the incident's own entries",
    READERS,
    IncidentTimeline,
    params=(INCIDENT,),
    errors=(404,),
)
INCIDENT_NOTE = Endpoint(
    "POST",
    "/api/incidents/{incident}/notes",
    "addIncidentNote",
    "incidents",
    "Add a note to the incident's timeline",
    OPERATORS,
    IncidentEventView,
    status=201,
    params=(INCIDENT,),
    body=Body(IncidentNote),
    errors=(404,),
)
INCIDENT_ACTION = Endpoint(
    "POST",
    "/api/incidents/{incident}/actions",
    "actOnIncident",
    "incidents",
    "Acknowledge, mitigate, resolve or reopen; or contain: roll the route back, pause its "
    "rollout, revoke a key, block a tenant's keys",
    OPERATORS,
    IncidentActed,
    params=(INCIDENT,),
    body=Body(IncidentAction),
    errors=(404, 409),
    description=(
        "Each action is audited and lands on the incident's timeline; a containment is "
        "done through its owner's store (the rollback and pause of api/rollouts.py, the "
        "revocation of api/keys.py, with their own audit rows) and marks an open incident "
        "mitigated. revoke_key and block_tenant need an admin key, as keys do. "
        "switch_model sends every request for a model to its fallbacks on every gateway "
        "(within its refresh), restore_model ends that; both need an admin key."
    ),
)
INCIDENT_SEVERITY = Endpoint(
    "POST",
    "/api/incidents/{incident}/severity",
    "setIncidentSeverity",
    "incidents",
    "Change the incident's severity, saying why (409 once closed, or when it is that already)",
    OPERATORS,
    IncidentView,
    params=(INCIDENT,),
    body=Body(IncidentSeverity),
    errors=(404, 409),
)
INCIDENT_POSTMORTEM = Endpoint(
    "POST",
    "/api/incidents/{incident}/postmortem",
    "recordIncidentPostmortem",
    "incidents",
    "Record the postmortem: the markdown given, or a draft from the incident's record",
    OPERATORS,
    IncidentPostmortemView,
    params=(INCIDENT,),
    body=Body(IncidentPostmortem, max_bytes=POSTMORTEM_BYTES, allow_empty=True),
    errors=(404,),
)
GET_POSTMORTEM = Endpoint(
    "GET",
    "/api/incidents/{incident}/postmortem",
    "getIncidentPostmortem",
    "incidents",
    "The recorded postmortem, else a draft (not recorded)",
    READERS,
    IncidentPostmortemView,
    params=(INCIDENT,),
    errors=(404,),
)
INCIDENT_RULE = Endpoint(
    "POST",
    "/api/incidents/{incident}/rules",
    "addIncidentRule",
    "incidents",
    "Record the reusable rule the incident bought (a dataset case from its failed requests "
    "with from_failed)",
    OPERATORS,
    IncidentRuleAdded,
    status=201,
    params=(INCIDENT,),
    body=Body(IncidentRule),
    errors=(404, 409),
)
CLOSE_INCIDENT = Endpoint(
    "POST",
    "/api/incidents/{incident}/close",
    "closeIncident",
    "incidents",
    "Close a resolved incident that has its postmortem and a rule (409 naming what is missing)",
    OPERATORS,
    IncidentView,
    params=(INCIDENT,),
    body=Body(IncidentClose, allow_empty=True),
    errors=(404, 409),
)
