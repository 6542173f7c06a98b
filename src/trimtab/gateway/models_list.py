"""The /v1/models answer: the configured models, in the OpenAI or the Anthropic shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trimtab.gateway.catalog import Target


def model_list(targets: Sequence[Target], *, anthropic: bool) -> dict[str, Any]:
    """The listing of `targets` (Anthropic's shape when the caller sent anthropic-version)."""
    if anthropic:
        data: dict[str, Any] = {
            "data": [
                {
                    "type": "model",
                    "id": t.name,
                    "display_name": t.name,
                    "created_at": "1970-01-01T00:00:00Z",
                }
                for t in targets
            ],
            "has_more": False,
            "first_id": targets[0].name if targets else None,
            "last_id": targets[-1].name if targets else None,
        }
    else:
        data = {
            "object": "list",
            "data": [
                {
                    "id": t.name,
                    "object": "model",
                    "created": 0,
                    "owned_by": t.primary.provider.name,
                }
                for t in targets
            ],
        }
    return data
