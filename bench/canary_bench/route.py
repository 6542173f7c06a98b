"""The simulated route: stable's behaviour, which every scenario starts from."""

from __future__ import annotations

RATE = 20.0  # requests per second on the route
LOOK_S = 5.0  # the controller's check interval
ERROR_RATE = 0.01
LATENCY_MEDIAN_MS = 800.0
LATENCY_SIGMA = 0.6  # log-normal: heavy-tailed, p95 = 2.7 x median
COST_MEAN = 0.002  # USD per request
COST_SIGMA = 0.8  # log-normal; coefficient of variation 0.95
FEEDBACK_SHARE = 0.2
NEGATIVE_RATE = 0.10
QUALITY_MEAN = 0.8  # stable's mean online score
QUALITY_CONCENTRATION = 4.0  # Beta(0.8 k, 0.2 k): sd 0.18 (a pass/fail scorer's is 0.4)
