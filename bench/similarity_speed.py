"""The similarity scorer's speed: the model's load time and texts embedded per second
(wall and per CPU-second), over 256 texts of ~20 tokens after a warm-up of 8.

    .venv/bin/python bench/similarity_speed.py
"""

from __future__ import annotations

import os
import time

from trimtab.evals.embeddings import default_model


def main() -> None:
    started = time.perf_counter()
    model = default_model()
    load = time.perf_counter() - started
    texts = [
        f"Our refund policy for order {i}: refunds take five working days after the parcel "
        "arrives back."
        for i in range(256)
    ]
    model.encode(texts[:8])
    cpu, wall = time.process_time(), time.perf_counter()
    model.encode(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"load {load:.2f} s; {len(texts)} texts: {wall:.2f} s wall, {cpu:.2f} s CPU; "
        f"{len(texts) / wall:.1f} per second, {len(texts) / cpu:.1f} per CPU-second; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
