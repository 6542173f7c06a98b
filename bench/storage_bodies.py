"""Micro-measure of storage.bodies (docs/guardrails.md, Data protection): per record of a
2 KB prompt and a 1 KB answer, the event loop's part and the writer thread's.

    .venv/bin/python bench/storage_bodies.py
"""

import statistics
import time
from collections.abc import Callable

import orjson

from trimtab.config import StorageConfig
from trimtab.privacy.storage import BodyPolicy, body_policy
from trimtab.telemetry.record import RequestRecord

words = ("Please help me with my order, it has not arrived yet and I am waiting " * 40)[:2000]
prompt = orjson.dumps(
    {
        "model": "gpt-mock",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": words + " mail me at jane.doe@example.com"},
        ],
    }
).decode()
answer = orjson.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": words[:1000]},
                "finish_reason": "stop",
            }
        ],
    }
).decode()


def rec() -> RequestRecord:
    return RequestRecord(
        id="r",
        started_at=0.0,
        api="openai",
        operation="chat",
        tenant="acme",
        request_body=prompt,
        response_body=answer,
    )


def timeit(fn: Callable[[RequestRecord], object], n: int = 2000) -> str:
    for _ in range(50):  # warm-up: the detector's lazily built tables
        fn(rec())
    out = []
    for _ in range(n):
        r = rec()
        t = time.perf_counter()
        fn(r)
        out.append((time.perf_counter() - t) * 1e6)
    out.sort()
    return f"p50 {statistics.median(out):.1f} us, p99 {out[int(len(out) * 0.99)]:.1f} us"


def main() -> None:
    for mode in ("redacted", "hashed", "none"):
        policy = body_policy(StorageConfig(bodies=mode, hash_key="k" * 32))

        def loop_side(r: RequestRecord, policy: BodyPolicy = policy) -> None:
            policy.applies(r)
            policy.scrub_errors(r)

        print(f"{mode:9} event loop (applies, scrub_errors): {timeit(loop_side)}")
        print(f"{mode:9} writer thread (scrub_bodies):       {timeit(policy.scrub_bodies, 500)}")


if __name__ == "__main__":
    main()
