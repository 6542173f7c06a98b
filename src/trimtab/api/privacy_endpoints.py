"""The data-protection operations of the control-plane API (privacy/), declared once
(api/schema.py): erasure and export of one user's data, admin only."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from trimtab.api.endpoints import ADMINS
from trimtab.api.schema import Body, Endpoint, text

USER_CHARS = 256  # requests.user_id's width
TENANT_CHARS = 128


class ErasureCreate(TypedDict):
    user: Annotated[str, Field(min_length=1, max_length=USER_CHARS)]
    tenant: NotRequired[
        Annotated[str | None, Field(max_length=TENANT_CHARS, description="absent: every tenant")]
    ]


class ErasedCounts(TypedDict):
    requests: int
    feedback: int
    eval_results: int
    dataset_items: Annotated[int, Field(description="positions removed from dataset versions")]
    dataset_item_contents: Annotated[
        int, Field(description="stored item contents no version holds any more, deleted")
    ]


class Erasure(TypedDict):
    user: str
    tenant: str | None
    erased: ErasedCounts
    audit_action: Literal["privacy.erase"]


class ExportLine(TypedDict):
    kind: Literal["request", "feedback", "dataset_item", "eval_result"]
    data: dict[str, Any]


ERASE = Endpoint(
    "POST",
    "/api/erasures",
    "eraseUser",
    "privacy",
    "Erase everything stored of one user: requests, feedback, dataset items, eval results",
    ADMINS,
    Erasure,
    body=Body(ErasureCreate),
    description=(
        "Deletes in batches and leaves one audit row (privacy.erase, target user:USER) with "
        "the counts. A dataset item whose metadata.user is USER leaves every version holding "
        "it (of TENANT, when given); see docs/guardrails.md, Data protection."
    ),
)
EXPORT = Endpoint(
    "GET",
    "/api/exports",
    "exportUser",
    "privacy",
    "Everything stored of one user, as JSON Lines: one {kind, data} object a line (the right "
    "of access)",
    ADMINS,
    ExportLine,
    params=(
        text("user", "The user tag of the requests (and metadata.user of dataset items)"),
        text("tenant", "Only this tenant's rows (absent: every tenant)"),
    ),
    description=(
        "Streamed as the store is read, in batches, so an export of any size takes constant "
        "memory: requests (each followed, per batch, by its feedback and eval results), then "
        "dataset items and their eval results. A store that fails once the answer has begun "
        "ends it without the final chunk (an incomplete body, which HTTP clients report)."
    ),
    media_type="application/x-ndjson",
)
