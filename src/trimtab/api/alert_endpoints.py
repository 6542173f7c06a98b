"""The alert and silence operations of the control-plane API, declared once (api/schema.py)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's only on Python >= 3.12

from trimtab.api.params import bad_param
from trimtab.api.schema import Body, Endpoint, Param, integer
from trimtab.types import OPERATORS, READERS

ALERT_STATES = ("open", "firing", "acknowledged", "resolved", "all")
ALERT_SEVERITIES = ("page", "ticket", "info", "all")
ID_MAX = 2**31 - 1
MESSAGE_CHARS = 2000
MATCHERS_MAX = 20


def _identifier(name: str, what: str) -> Param:
    def read(value: str | None) -> int:
        if value is None or not re.fullmatch(r"[0-9]{1,10}", value) or not 0 < int(value) <= ID_MAX:
            raise bad_param(name, f"'{value}' is not {what}'s id (a positive whole number)")
        return int(value)

    schema = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
    return Param(name, "path", f"The {what}'s id", schema, read)


def _pick(name: str, description: str, options: tuple[str, ...], default: str) -> Param:
    def read(value: str | None) -> str:
        chosen = value or default
        if chosen not in options:
            raise bad_param(name, f"'{chosen}' is not one of {', '.join(options)}")
        return chosen

    schema = {"type": "string", "enum": list(options), "default": default}
    return Param(name, "query", description, schema, read)


ALERT_ID = _identifier("alert_id", "an alert")
SILENCE_ID = _identifier("silence_id", "a silence")
STATE = _pick(
    "state", "Only alerts in this state (open: firing or acknowledged)", ALERT_STATES, "all"
)
SEVERITY = _pick("severity", "Only alerts of this severity", ALERT_SEVERITIES, "all")
SILENCE_STATE = _pick("state", "Active silences only, or every one", ("active", "all"), "active")
ALERT_LIMIT = integer("limit", "At most this many, newest first", default=100, low=1, high=1000)


# -- shapes -------------------------------------------------------------------------------


class AlertView(TypedDict):
    id: int
    dedup_key: str
    source: str
    severity: Annotated[str, Field(description="page, ticket or info")]
    state: Annotated[str, Field(description="firing, acknowledged or resolved")]
    summary: str
    labels: dict[str, str]
    details: dict[str, Any]
    owner: str | None
    on_call: Annotated[str | None, Field(description="who was on call when it started")]
    silenced: Annotated[bool, Field(description="a silence matched: recorded, not sent")]
    count: Annotated[int, Field(description="firing signals seen")]
    started_at: str
    updated_at: str
    acked_at: str | None
    acked_by: str | None
    ack_comment: str | None
    resolved_at: str | None
    expires_at: str | None


class DeliveryView(TypedDict):
    sink: str
    event: Annotated[str, Field(description="trigger, acknowledge or resolve")]
    status: Annotated[str, Field(description="pending, delivered or dead")]
    attempts: int
    last_error: str | None
    created_at: str
    delivered_at: str | None


class AlertDetail(AlertView):
    deliveries: list[DeliveryView]


class AlertList(TypedDict):
    data: list[AlertView]


class SilenceView(TypedDict):
    id: int
    matchers: list[str]
    starts_at: str
    ends_at: str
    active: bool
    created_by: str | None
    comment: str
    created_at: str


class SilenceList(TypedDict):
    data: list[SilenceView]


class AlertAck(TypedDict):
    message: Annotated[str, Field(description="what is being done about it", max_length=2000)]


class SilenceCreate(TypedDict):
    matchers: Annotated[
        list[str],
        Field(description="label=value, label!=value or label=~regex; all must match"),
    ]
    duration: Annotated[str, Field(description="how long: 30m, 2h, 1d (at most 365d)")]
    message: Annotated[str, Field(description="why", max_length=2000)]


# -- operations ---------------------------------------------------------------------------

LIST_ALERTS = Endpoint(
    "GET",
    "/api/alerts",
    "listAlerts",
    "alerts",
    "Alerts, newest first: SLO burn, budgets, breakers, telemetry, the key store",
    READERS,
    AlertList,
    params=(STATE, SEVERITY, ALERT_LIMIT),
    description=(
        "A non-admin key sees the alerts labelled with its tenant or one of its tenant's routes."
    ),
)
GET_ALERT = Endpoint(
    "GET",
    "/api/alerts/{alert_id}",
    "getAlert",
    "alerts",
    "One alert, with what each sink was sent and how it went",
    READERS,
    AlertDetail,
    params=(ALERT_ID,),
    errors=(404,),
)
ACK_ALERT = Endpoint(
    "POST",
    "/api/alerts/{alert_id}/ack",
    "ackAlert",
    "alerts",
    "Acknowledge a firing alert (PagerDuty hears `acknowledge`); audited",
    OPERATORS,
    AlertView,
    params=(ALERT_ID,),
    body=Body(AlertAck, max_bytes=16_384),
    errors=(404, 409),
    description="409 alert_resolved: a resolved alert cannot be acknowledged.",
)
LIST_SILENCES = Endpoint(
    "GET",
    "/api/silences",
    "listSilences",
    "alerts",
    "Silences: label matchers that suppress delivery until they end",
    READERS,
    SilenceList,
    params=(SILENCE_STATE, ALERT_LIMIT),
)
CREATE_SILENCE = Endpoint(
    "POST",
    "/api/silences",
    "createSilence",
    "alerts",
    "Silence the alerts matching every matcher, from now for a duration; audited",
    OPERATORS,
    SilenceView,
    status=201,
    body=Body(SilenceCreate, max_bytes=16_384),
    description=(
        "Alerts a silence matches are still recorded (marked silenced) but sent nowhere. "
        "A non-admin's silence is confined to its tenant (`tenant=T` is added)."
    ),
)
DELETE_SILENCE = Endpoint(
    "DELETE",
    "/api/silences/{silence_id}",
    "deleteSilence",
    "alerts",
    "End a silence now; audited",
    OPERATORS,
    SilenceView,
    params=(SILENCE_ID,),
    errors=(404, 409),
    description="409 silence_ended: it has already ended.",
)
