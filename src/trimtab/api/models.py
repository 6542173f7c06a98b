"""The request bodies of the control-plane API, as TypedDicts, and the bounds they share.

The endpoint declarations (api/schema.py) name them; the handlers take a body's fields
from them, and the OpenAPI document (api/openapi.py) turns them into JSON Schema with
pydantic. A key a body may leave out is `NotRequired`. The responses are in api/views.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's only on Python >= 3.12

from trimtab.api.params import MAX_TEXT
from trimtab.types import Role

# the bounds a handler checks with its own message, and the document states
TENANT_CHARS = 128


OWNER_CHARS = 256  # a key's owner and its name


APPLY_MESSAGE_CHARS = 2000


SOURCE_CHARS = 300


URL_CHARS = 1024  # an attestation's url: the attestations.url column


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


Version = Annotated[
    int | str, Field(description="a version number, as 2 or 'v2'", examples=["v2", 2])
]


class KeyCreate(TypedDict):
    tenant: Annotated[str, Field(min_length=1, max_length=TENANT_CHARS)]
    role: Role
    owner: Annotated[str, Field(min_length=1, max_length=OWNER_CHARS)]
    name: NotRequired[Annotated[str, Field(min_length=1, max_length=OWNER_CHARS)] | None]
    expires_at: NotRequired[
        Annotated[str | None, Field(description="ISO 8601 (naive is UTC), in the future")]
    ]
    expires_in: NotRequired[
        Annotated[str | None, Field(pattern=r"^[0-9]+[smhd]$", description="e.g. 30d, 12h")]
    ]


class RoutesApply(TypedDict):
    message: Annotated[str, Field(min_length=1, max_length=APPLY_MESSAGE_CHARS)]
    yaml: NotRequired[Annotated[str, Field(description="the text of a routes file")]]
    routes: NotRequired[dict[str, Any]]
    source: NotRequired[Annotated[str, Field(min_length=1, max_length=SOURCE_CHARS)]]


DATASET_PUSH_BYTES = 16 * 1024 * 1024


class DatasetPush(TypedDict):
    format: Literal["jsonl", "csv"]
    content: Annotated[str, Field(description="the text of the JSONL or CSV file")]
    message: Annotated[str, Field(min_length=1, max_length=APPLY_MESSAGE_CHARS)]
    source: NotRequired[Annotated[str, Field(min_length=1, max_length=SOURCE_CHARS)]]
    tenant: NotRequired[
        Annotated[
            str,
            Field(
                max_length=TENANT_CHARS,
                description="whose dataset (an admin may name any tenant; empty: shared)",
            ),
        ]
    ]


EVAL_RESULTS_BYTES = 8 * 1024 * 1024
EVAL_BATCH = 1000  # results, or cache digests, in one call
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="a SHA-256, in hex")]


class EvalRunCreate(TypedDict):
    suite: Annotated[str, Field(min_length=1, max_length=128)]
    definition: Annotated[
        dict[str, Any], Field(description="the suite, as under its name in an `evals:` section")
    ]
    version: NotRequired[Version]
    source: NotRequired[Annotated[str, Field(min_length=1, max_length=SOURCE_CHARS)]]


class EvalResultIn(TypedDict):
    item_id: Annotated[str, Field(min_length=1, max_length=128)]
    request_digest: Digest
    output: NotRequired[str | None]
    error: NotRequired[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None]
    scores: dict[str, dict[str, Any]]
    latency_ms: NotRequired[Annotated[float, Field(ge=0)] | None]
    input_tokens: NotRequired[Annotated[int, Field(ge=0, le=2**31 - 1)] | None]
    output_tokens: NotRequired[Annotated[int, Field(ge=0, le=2**31 - 1)] | None]
    cost_usd: NotRequired[Annotated[float, Field(ge=0)] | None]
    request_id: NotRequired[Annotated[str, Field(min_length=1, max_length=40)] | None]
    cached: NotRequired[bool]


class EvalResultsIn(TypedDict):
    results: Annotated[list[EvalResultIn], Field(min_length=1, max_length=EVAL_BATCH)]


class EvalCacheLookup(TypedDict):
    digests: Annotated[list[Digest], Field(max_length=EVAL_BATCH)]


class RolloutStart(TypedDict):
    to: Version
    plan: NotRequired[Text]
    reason: NotRequired[Text]


class MoveBody(TypedDict):
    reason: Text


class RollbackBody(TypedDict):
    to: NotRequired[Version]
    reason: Text
    override_gate: NotRequired[bool]


AttestationKind = Literal["eval", "redteam", "approval", "changelog"]


class AttestBody(TypedDict):
    kind: AttestationKind
    result: Literal["pass", "fail"]
    note: NotRequired[Text]
    url: NotRequired[Annotated[str, Field(min_length=1, max_length=URL_CHARS)]]


class FeedbackBody(TypedDict):
    request_id: Text
    score: NotRequired[Annotated[float, Field(ge=0, le=1)] | Literal["up", "down"]]
    thumbs: NotRequired[Literal["up", "down"]]
    comment: NotRequired[Text]
    escalated: NotRequired[bool]


class SlosApply(TypedDict):
    message: Annotated[str, Field(min_length=1, max_length=APPLY_MESSAGE_CHARS)]
    yaml: Annotated[str, Field(description="the text of a file with an `slos:` section")]
    source: NotRequired[Annotated[str, Field(min_length=1, max_length=SOURCE_CHARS)]]
    prune: NotRequired[
        Annotated[bool, Field(description="delete the caller's SLOs the file does not name")]
    ]
    dry_run: NotRequired[
        Annotated[bool, Field(description="say what would change and change nothing")]
    ]
    planned_routes: NotRequired[
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=SOURCE_CHARS)]],
            Field(
                max_length=1000,
                description="with dry_run: the routes the same apply creates first, "
                "taken as known by the SLOs that name them",
            ),
        ]
    ]
    planned_suites: NotRequired[
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=SOURCE_CHARS)]],
            Field(
                max_length=1000,
                description="with dry_run: the eval suites the same apply creates or "
                "replaces first in the caller's scope, taken as known by the eval_score "
                "SLOs that name them",
            ),
        ]
    ]
