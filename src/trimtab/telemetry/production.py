"""Production traffic, as SQL: the one condition that keeps eval runs' records (feature
`eval:RUN`, types.is_eval_feature) out of the figures read from `requests` and the rollups.

A query that names a feature (`?feature=eval:run_...`) asks for it explicitly and does not
apply it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, not_, or_

from trimtab.types import EVAL_FEATURE_PREFIX


def production(feature: Any) -> ColumnElement[bool]:
    """True for a row of production traffic: its `feature` column is not `eval:...`."""
    return or_(feature.is_(None), not_(feature.startswith(EVAL_FEATURE_PREFIX, autoescape=True)))


def unless_named(feature: Any, named: str | None) -> list[ColumnElement[bool]]:
    """The conditions a query adds: production only, unless it names a feature itself."""
    return [production(feature)] if named is None else []
