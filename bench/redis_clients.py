"""Which Redis client for the trio server: round trips and pipelined batches, measured.

    .venv/bin/python bench/redis_clients.py --port 6379        # ours only
    python bench/redis_clients.py --port 6379                  # + redis-py, if installed with trio-asyncio

Compares CometQL's own connection (hiredis parser on a trio stream, cometql/store/resp.py)
with redis-py's asyncio client, once on plain asyncio (its best case) and once under
trio-asyncio (how it would run inside the trio server). Each does N single XADDs one after
the other (the latency-bound path: one INSERT alone) and N/100 pipelines of 100 XADDs
(the group-commit path under load). One more row: the same with PUBLISH instead of XADD,
i.e. what pub/sub instead of a stream would cost the writer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIELDS = ("n", "bench", "d", "x" * 100)


XADD = ("XADD", "bench:ours", "MAXLEN", "~", 1000, "*", *FIELDS)
PUBLISH = ("PUBLISH", "bench:ours", FIELDS[-1])


async def ours(port: int, n: int, command: tuple[str | int, ...] = XADD) -> tuple[float, float]:
    from cometql.redisurl import RedisAddress
    from cometql.store.resp import RedisConnection

    conn = await RedisConnection.open(RedisAddress.parse(f"redis://127.0.0.1:{port}/0"))
    t0 = time.perf_counter()
    for _ in range(n):
        await conn.call(*command)
    single = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(n // 100):
        await conn.pipeline([command] * 100)
    piped = n / (time.perf_counter() - t0)
    await conn.aclose()
    return single, piped


async def redis_py(port: int, n: int) -> tuple[float, float]:
    import redis.asyncio as aioredis

    client = aioredis.Redis(port=port)
    t0 = time.perf_counter()
    for _ in range(n):
        await client.xadd("bench:py", dict(zip(FIELDS[::2], FIELDS[1::2], strict=True)), maxlen=1000)
    single = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(n // 100):
        pipe = client.pipeline(transaction=False)
        for _ in range(100):
            pipe.xadd("bench:py", dict(zip(FIELDS[::2], FIELDS[1::2], strict=True)), maxlen=1000)
        await pipe.execute()
    piped = n / (time.perf_counter() - t0)
    await client.aclose()
    return single, piped


async def redis_py_under_trio(port: int, n: int) -> tuple[float, float]:
    import trio_asyncio

    async with trio_asyncio.open_loop():
        return await trio_asyncio.aio_as_trio(redis_py)(port, n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=6379)
    p.add_argument("-n", type=int, default=20000)
    args = p.parse_args()
    rows = [("hiredis on trio (CometQL)", trio.run(ours, args.port, args.n)),
            ("  same, PUBLISH instead of XADD", trio.run(ours, args.port, args.n, PUBLISH))]
    try:
        rows.append(("redis-py asyncio, plain asyncio", asyncio.run(redis_py(args.port, args.n))))
        rows.append(("redis-py asyncio, under trio-asyncio", trio.run(redis_py_under_trio, args.port, args.n)))
    except ImportError as exc:
        print(f"(redis-py comparison skipped: {exc})")
    print(f"{'client':40} {'single/s':>14} {'pipelined/s':>17}")
    for name, (single, piped) in rows:
        print(f"{name:40} {single:14,.0f} {piped:17,.0f}")


if __name__ == "__main__":
    main()
