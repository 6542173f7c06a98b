"""Send route calls as many users, through the OpenAI SDK, and count the versions served.

python examples/releasing/traffic.py [REQUESTS] [--users N]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random

import openai


async def main(requests: int, users: int, concurrency: int) -> None:
    client = openai.AsyncOpenAI(
        base_url=os.environ.get("TRIMTAB_URL", "http://127.0.0.1:4000") + "/v1",
        api_key=os.environ.get("TRIMTAB_APP_KEY", "tt-guide-app-0001"),
        max_retries=0,
    )
    served: collections.Counter[str] = collections.Counter()
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="route:support-answer",
                    messages=[{"role": "user", "content": f"ticket {i}"}],
                    user=f"customer-{random.randrange(users)}",
                    extra_body={
                        "variables": {"policy": "Refunds within 30 days.", "question": "Can I?"}
                    },
                )
                served[raw.headers["x-trimtab-version"]] += 1
            except openai.APIStatusError as exc:
                served[f"error {exc.status_code}"] += 1

    await asyncio.gather(*(one(i) for i in range(requests)))
    print(", ".join(f"{k}: {v}" for k, v in sorted(served.items())))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("requests", type=int, nargs="?", default=1000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.users, args.concurrency))
