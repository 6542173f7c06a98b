"""Sticky assignment: which version a request of a rollout is served by.

A caller (user, else session, else the request itself) is bucketed once, by a hash of the
rollout and the caller, and keeps that version for the whole rollout: the first
assignment is remembered (in the shared state), so widening a stage only brings new
callers onto the candidate and nobody sees answers flip between versions.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(rollout_id: str, sticky_key: str) -> int:
    """A stable bucket in 0..9999 for this caller in this rollout."""
    digest = hashlib.blake2b(f"{rollout_id}\x00{sticky_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def on_candidate(rollout_id: str, sticky_key: str, percent: float) -> bool:
    """Whether a caller seen for the first time goes to the candidate at this stage."""
    return bucket(rollout_id, sticky_key) < percent * BUCKETS / 100


def sticky_key(user: str | None, session: str | None, request_id: str) -> str:
    """User, else session, else the request: the unit that must not see versions flip."""
    if user:
        return "user:" + user
    if session:
        return "session:" + session
    return "request:" + request_id
