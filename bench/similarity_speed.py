"""The similarity scorer's speed: the model's load time; texts embedded per second (wall and
per CPU-second) over 256 texts of ~20 tokens; and 128 items (an answer and an expected
string each, ~20 tokens apiece) scored one item at a time, as a run did before it batched
across items, and across the items together, as a run's writer does now
(evals/similarity.py). Each measure after a warm-up; the two scorings interleaved
`--rounds` times, the median reported.

    OMP_NUM_THREADS=1 .venv/bin/python bench/similarity_speed.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from trimtab.evals.datasets import Item
from trimtab.evals.embeddings import default_model
from trimtab.evals.scorers import Answer, Similarity, build

ITEMS = 128


def _cpu(work: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    model = default_model()
    load = time.perf_counter() - started
    texts = [
        f"Our refund policy for order {i}: refunds take five working days after the parcel "
        "arrives back."
        for i in range(256)
    ]
    model.encode(texts[:8])
    wall, cpu = _cpu(lambda: model.encode(texts))
    print(
        f"load {load:.2f} s; {len(texts)} texts: {wall:.2f} s wall, {cpu:.2f} s CPU; "
        f"{len(texts) / wall:.1f} per second, {len(texts) / cpu:.1f} per CPU-second"
    )

    spec = Similarity(kind="similarity", name="close")
    items = [
        Item(id=f"q{i}", variables={"q": "x"}, expected=texts[2 * i + 1]) for i in range(ITEMS)
    ]
    answers = [texts[2 * i].replace("five", "5") for i in range(ITEMS)]
    alone = build(spec)

    def per_item() -> None:
        for item, answer in zip(items, answers, strict=True):
            alone(item, Answer(answer))

    try:
        from trimtab.evals.similarity import score_batch
    except ImportError:  # the code before batching across items
        score_batch = None  # type: ignore[assignment]

    def across() -> None:
        assert score_batch is not None
        score_batch(model, [spec], list(zip(items, answers, strict=True)))

    per_item()
    ways = {"one item at a time": per_item}
    if score_batch is not None:
        across()
        ways["across the items"] = across
    cpus: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, work in ways.items():
            cpus[name].append(_cpu(work)[1])
    for name, taken in cpus.items():
        median = statistics.median(taken)
        print(
            f"{ITEMS} items scored {name}: median {median:.2f} s CPU of {args.rounds} rounds "
            f"({', '.join(f'{t:.2f}' for t in taken)}); {ITEMS / median:.1f} items per "
            "CPU-second"
        )
    threads = os.environ.get("OMP_NUM_THREADS")
    print(f"load average {os.getloadavg()[0]:.1f}; OMP_NUM_THREADS={threads}")


if __name__ == "__main__":
    main()
