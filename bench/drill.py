"""The fault drill: run every script in bench/drills/ and gather their figures.

Each drill is a standalone script that starts what it needs (a gateway, PostgreSQL, Redis,
the mock provider) on loopback, breaks something for real (SIGKILL, a stopped database, a
killed Redis), measures what users would see, and prints a table followed by one line of
JSON with its figures. This runner runs them one after another and prints the JSON lines
together, so `make drill` is one command for docs/reliability.md's figures.

    .venv/bin/python bench/drill.py [--only sigkill,redis_outage]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DRILLS = Path(__file__).resolve().parent / "drills"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated drill names")
    args = parser.parse_args()
    wanted = {name for name in args.only.split(",") if name}
    scripts = sorted(p for p in DRILLS.glob("*.py") if not p.name.startswith("_"))
    if wanted:
        scripts = [p for p in scripts if p.stem in wanted]
    if not scripts:
        print("no drill to run", file=sys.stderr)
        return 2
    results: dict[str, object] = {}
    failed = False
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=600
        )
        print(proc.stdout, end="")
        if proc.returncode != 0:
            failed = True
            print(proc.stderr[-4000:], file=sys.stderr)
            results[script.stem] = {"error": f"exit {proc.returncode}"}
            continue
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        figures = json.loads(lines[-1]) if lines else {"error": "no JSON line"}
        figures["seconds"] = round(time.monotonic() - t0, 1)
        results[script.stem] = figures
    print("== figures")
    print(json.dumps(results, indent=2, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
