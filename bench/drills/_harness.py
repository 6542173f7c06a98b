"""What the drills share: the mock upstream and `trimtab serve`, all on
127.0.0.1 in a temporary directory, and a table printer."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from trimtab.testing.servers import free_port

TRIMTAB = Path(sys.executable).parent / "trimtab"
ADMIN_KEY = "tt-drill-admin-0001"
APP_KEY = "tt-drill-app-0001"
OPERATOR_KEY = "tt-drill-operator-0001"
KEYS = [
    {"key": ADMIN_KEY, "tenant": "acme", "role": "admin"},
    {"key": APP_KEY, "tenant": "acme", "role": "app"},
    {"key": OPERATOR_KEY, "tenant": "acme", "role": "operator"},
]


class Gateway:
    """`trimtab serve` with a configuration, on a free port."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        path = folder / "trimtab.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = folder / "trimtab.log"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [TRIMTAB, "serve", "--config", str(path), "--port", str(port)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trimtab exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"trimtab did not become ready:\n{self.log.read_text()}")

    def post(self, path: str, key: str, **body: Any) -> httpx.Response:
        return httpx.post(
            self.url + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
        )

    def metrics(self) -> dict[str, float]:
        """The /metrics samples: "name{labels}" -> value."""
        text = httpx.get(
            self.url + "/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, columns right-aligned except the first."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
