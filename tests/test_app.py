"""What a gateway built from the default configuration loads: the weight of a server."""

from __future__ import annotations

import subprocess
import sys

# libraries a gateway loads only for a feature that is used: scipy.special for the
# similarity scorer's model, aiohttp for a first alert delivery; scipy.stats not at all
# (the forecast's t distribution is trimtab.stats.student), the Redis client for shared
# state. Each costs 7-80 MiB of RSS.
ON_DEMAND = ("scipy", "aiohttp", "redis")


def test_a_default_gateway_loads_no_library_it_does_not_use(tmp_path: object) -> None:
    code = (
        "import sys; from trimtab.app import create_app; from trimtab.config import default_config;"
        " create_app(default_config());"
        " print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(tmp_path)
    )
    loaded = set(out.stdout.split())
    assert "trimtab" in loaded and "starlette" in loaded  # the app was built
    assert not loaded & set(ON_DEMAND), f"loaded at start: {sorted(loaded & set(ON_DEMAND))}"
