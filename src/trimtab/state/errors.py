"""How the shared-state backend fails: apart from the Redis client, so that a gateway whose
state stays in the process never imports it."""

from __future__ import annotations


class StateUnavailable(RuntimeError):
    """The shared-state backend could not be reached or failed a command."""


class StateLost(RuntimeError):
    """Redis answered but no longer holds the seed marker: it lost its data (a restart without
    persistence, a flush), so budget counters must be seeded again before they are used."""
