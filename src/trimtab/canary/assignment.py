"""Sticky assignment: which version a request of a rollout is served by.

A caller (user, else session, else the request itself) is bucketed by a hash of the
rollout and the caller, once for the whole rollout. By default (a plan's `assignment:
bucket`) the callers whose bucket is under the stage's percentage are on the candidate:
each stage reaches its share of callers, a caller on the candidate stays there as stages
widen, and a caller on stable moves to the candidate at most once, never back. With
`assignment: first_seen` the version a caller was first given is remembered in the shared
state (gateway/service.py) and kept: nobody's version changes, but a caller met at 1 % on
stable stays there, so with returning callers the candidate's share of traffic lags the
plan's (docs/canary.md measures it: a "50 %" stage serving about 1 %).
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
