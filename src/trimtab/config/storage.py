"""`storage:`: what the store keeps of request and answer bodies, per tenant, and for how
long (docs/data-protection.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trimtab.config.strict import Strict

BodiesMode = Literal["full", "redacted", "hashed", "none"]


class RetentionConfig(Strict):
    """How long the store keeps what (docs/guardrails.md, Data protection); None: forever."""

    bodies_days: float | None = Field(default=None, gt=0)  # then the body columns are nulled
    rows_days: float | None = Field(default=None, gt=0)  # then the request rows are deleted
    rollups_days: float | None = Field(default=None, gt=0)  # per-minute rollups, kept longer


class TenantStorageConfig(Strict):
    bodies: BodiesMode | None = None  # None: the gateway's
    retention: RetentionConfig | None = None  # None: the gateway's; a key left out: too


class StorageConfig(Strict):
    """What the store keeps of request and answer bodies, and for how long."""

    bodies: BodiesMode = "redacted"  # the default for plain model calls and routes
    hash_key: str | None = None  # the HMAC-SHA256 key of `hashed` (e.g. ${TRIMTAB_HASH_KEY})
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    tenants: dict[str, TenantStorageConfig] = Field(default_factory=dict)
    retention_interval_s: float = Field(default=300.0, gt=0)  # how often the job runs
    retention_batch: int = Field(default=1000, ge=1, le=100_000)  # rows per statement

    @model_validator(mode="after")
    def _hash_key(self) -> StorageConfig:
        hashed = ["storage.bodies"] if self.bodies == "hashed" else []
        hashed += [
            f"storage.tenants.{t}.bodies" for t, c in self.tenants.items() if c.bodies == "hashed"
        ]
        if hashed and not self.hash_key:
            raise ValueError(
                f"storage.hash_key: required by {hashed[0]}: hashed (an HMAC key, "
                "e.g. ${TRIMTAB_HASH_KEY}, at least 16 characters)"
            )
        if self.hash_key is not None and len(self.hash_key) < 16:
            raise ValueError("storage.hash_key: must be at least 16 characters")
        return self
