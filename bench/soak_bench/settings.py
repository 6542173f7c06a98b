"""Where the soak writes, the keys it sends, its rates, bounds and timings, and its setup
error."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


RESULTS = ROOT / "bench" / "results"


TRIMTAB = Path(sys.executable).parent / "trimtab"


HOST = "127.0.0.1"


ADMIN_KEY = "tt-soak-admin-key"


APP_KEY = "tt-soak-app-key"


LIMITED_KEY = "tt-soak-limited-key"


BAD_KEY = "tt-soak-unknown-key"


LIMITED_RPM = 300


CACHE_PROMPTS = 40


CLIENT_TIMEOUT_S = 30.0


WARMUP_S = 60.0


MEMORY_GROWTH_LIMIT = 0.10


LATE_S = 0.05  # a request sent this much after it was due counts as late


FLAKY_RESET_S = 1.0


class SetupError(RuntimeError):
    """The soak could not start."""
