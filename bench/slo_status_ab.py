"""The 50 SLOs of `bench/slo_status.py --ten-million` read by an older `slo/windows.py`'s
`sketch_windows` against the tree's, alternately in one process on one database.

    .venv/bin/python bench/slo_status_ab.py --before /tmp/windows_before.py [--postgres]

`--before`: a copy of an older `src/trimtab/slo/windows.py` (`git show REV:src/trimtab/
slo/windows.py > FILE`), loaded as a module of its own; its `sketch_windows` stands in
for the tree's inside `read_statuses`, everything else is the tree's. Fills the data once
(`slo_status.fill`), checks that both give the same statuses for both mixes, then times
`--rounds` rounds of each, the order alternating, and prints the fastest and the median
of each: the wall time, and the CPU time (this process's, plus on PostgreSQL the
server's backends', from /proc in clock ticks), which a loaded machine inflates less."""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slo_status import NOW, fill, mixes  # bench/, this script's directory

from trimtab.slo import kinds
from trimtab.slo.evaluator import read_statuses
from trimtab.slo.spec import SloDefinition
from trimtab.store.engine import make_engine, migrate


def server_cpu(parent: int | None) -> float:
    """CPU seconds of the processes whose parent is `parent` (the postmaster's backends)."""
    if parent is None:
        return 0.0
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def compare(url: str, before: Path, rounds: int, postmaster: int | None) -> None:
    spec = importlib.util.spec_from_file_location("windows_before", before)
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    namespace = vars(kinds)  # read_together calls sketch_windows by this name
    tree = namespace["sketch_windows"]
    engine = make_engine(url)
    migrate(engine)
    fill(engine)

    def arm(sketch_windows: Any) -> Callable[[list[SloDefinition]], object]:
        def read(definitions: list[SloDefinition]) -> object:
            namespace["sketch_windows"] = sketch_windows
            try:
                return read_statuses(engine, definitions, NOW)
            finally:
                namespace["sketch_windows"] = tree

        return read

    arms = {"before": arm(old.sketch_windows), "tree": arm(tree)}
    for name, definitions in zip(("50 SLOs", "50 with the newer kinds"), mixes(), strict=True):
        assert arms["before"](definitions) == arms["tree"](definitions), "different statuses"
        wall: dict[str, list[float]] = {a: [] for a in arms}
        cpu: dict[str, list[float]] = {a: [] for a in arms}
        for r in range(rounds):
            for a in list(arms) if r % 2 else list(reversed(arms)):
                server = server_cpu(postmaster)
                t, c = time.perf_counter(), time.process_time()
                arms[a](definitions)
                wall[a].append(time.perf_counter() - t)
                cpu[a].append(time.process_time() - c + server_cpu(postmaster) - server)
        print(
            f"{name}: "
            + " | ".join(
                f"{a} wall {min(wall[a]) * 1000:.0f} / {statistics.median(wall[a]) * 1000:.0f}"
                f" ms, CPU {min(cpu[a]) * 1000:.0f} / {statistics.median(cpu[a]) * 1000:.0f} ms"
                for a in arms
            )
            + f" (fastest / median of {rounds})"
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.postgres:
        from trimtab.testing.postgres_server import PostgresServer

        with PostgresServer() as server:
            compare(server.sqlalchemy_url, args.before, args.rounds, server.pid)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            compare(f"sqlite:///{Path(tmp) / 'slo10m.db'}", args.before, args.rounds, None)


if __name__ == "__main__":
    main()
