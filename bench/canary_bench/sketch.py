"""Latency as the controller's sketch holds it: DDSketch-like buckets of 2 % width, counted
per rollout per window the way ``SketchLatency`` counts them."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

GAMMA = 1.02  # latency bucket width (the sketch keeps 1 % relative accuracy: 2 % buckets)
KEY_LO, KEY_HI = int(math.log(5.0) / math.log(GAMMA)), int(math.log(2e5) / math.log(GAMMA))
BUCKETS = KEY_HI - KEY_LO + 1


def bucket_key(t: Array) -> Array:
    """The bucket index of each latency ``t`` (bucket i is [GAMMA^i, GAMMA^(i+1)) past KEY_LO)."""
    k: Array = np.floor(np.log(np.maximum(t, 1e-300)) / math.log(GAMMA)) - KEY_LO
    return k


class Histograms:
    """Both arms' latency buckets per rollout per window: (R, W, B)."""

    def __init__(self, r: int, w: int) -> None:
        self.counts = np.zeros((r, w, BUCKETS))
        self._above: Array | None = None

    def add(
        self, rows: npt.NDArray[np.int64], window: npt.NDArray[np.int64], latencies: Array
    ) -> None:
        """``latencies`` (R, m) with NaN for requests not in this arm."""
        r, w, b = self.counts.shape
        ok = np.isfinite(latencies)
        key = np.clip(bucket_key(np.where(ok, latencies, 1.0)), 0, b - 1).astype(np.int64)
        flat = (rows[:, None] * w + window[:, None]) * b + key
        self.counts += np.bincount(flat[ok], minlength=r * w * b).reshape(r, w, b)
        self._above = None

    def above(self) -> Array:
        """(R, W, B + 1): requests in buckets above index i (wholly above i's bucket)."""
        if self._above is None:
            c = self.counts
            rev = np.cumsum(c[..., ::-1], axis=-1)[..., ::-1]  # at i: buckets >= i
            self._above = np.concatenate([rev[..., 1:], np.zeros((*c.shape[:-1], 1))], -1)
        return self._above

    def count_above(self, t: Array) -> Array:
        """(R, W) requests above thresholds ``t`` (R,), as ``SketchLatency`` counts them."""
        key = np.clip(bucket_key(t), -1, BUCKETS - 1).astype(np.int64)
        above = self.above()
        full = above[..., 0] + self.counts[..., 0]
        rows = np.arange(t.shape[0])
        out = np.where((key < 0)[:, None], full, above[rows, :, np.maximum(key, 0)])
        res: Array = np.where(np.isfinite(t)[:, None], out, 0.0)
        return res
