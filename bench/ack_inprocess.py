"""The acknowledged personal message without sockets or MySQL: hub + engine + SQLite, in one process.

What `cometql bench ack` costs beyond the network and the statement path: N users with one
``caps=ack`` session each (``ListSubscriber``), INSERTs of ``--rows`` users each decided by the hub and
applied by the engine from ``--backends`` tasks at once (stored in the SQLite group commit, delivered),
then every session's ``ack`` command run as the browser port runs it (``handle_command`` +
``Engine.apply``, a lazy deletion).
Prints CPU per message: the main thread's (``time.thread_time``) and the process's (with the
SQLite writer thread), median of ``--runs``.

    .venv/bin/python bench/ack_inprocess.py --messages 20000 --rows 50 --runs 5
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
import uuid

import orjson
import trio

from cometql.engine import Engine
from cometql.hub import ConnInfo, Hub, ListSubscriber
from cometql.hub._browser import handle_command
from cometql.store.sqlite import open_sqlite_store

DEV = 1


async def one_run(users: int, messages: int, rows: int, concurrency: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_sqlite_store(f"{tmp}/store.db") as store:
            hub = Hub(password="p", new_id=lambda: str(uuid.uuid4()), new_secret=lambda: "s")
            engine = Engine(hub, store)
            sessions = [ListSubscriber(u, DEV, u, ConnInfo(), caps=frozenset({"ack", "offset", "hb"}))
                        for u in range(1, users + 1)]
            for s in sessions:
                await engine.apply(hub.connect(s, 0))
            targets = itertools.cycle(sessions)
            thread0, process0 = time.thread_time(), time.process_time()
            sent = 0

            async def backend(acks: trio.Nursery) -> None:
                """One backend connection: an INSERT of ``rows`` users at a time, each after the last's OK."""
                nonlocal sent
                while sent < messages:
                    batch = [next(targets) for _ in range(rows)]
                    sent += rows
                    effects = []
                    for s in batch:
                        effects += hub.send_to_user(DEV, s.user_id, "ack", "hello", 0)
                    await engine.apply(effects)
                    for s in batch:  # each page acknowledges what it got, as a batch per session
                        if s.frames:
                            ids = [orjson.loads(f)["id"] for f in s.frames]
                            s.frames.clear()
                            acks.start_soon(engine.apply, handle_command(hub, s, "ack\n" + ",".join(ids), 0))

            async with trio.open_nursery() as acks:  # a task per ack, as the browser port runs one that awaits
                async with trio.open_nursery() as backends:
                    for _ in range(concurrency):
                        backends.start_soon(backend, acks)
            thread, process = time.thread_time() - thread0, time.process_time() - process0
            left = sum(hub.state.queue_size(DEV, s.user_id)[0] for s in sessions)
            assert left == 0, f"{left} messages were not acknowledged"
            return thread / sent * 1e6, process / sent * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--backends", type=int, default=32, help="INSERTs in flight at once (32)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = [trio.run(one_run, args.users, args.messages, args.rows, args.backends) for _ in range(args.runs)]
    main_us = statistics.median(r[0] for r in results)
    proc_us = statistics.median(r[1] for r in results)
    print(f"{args.messages:,} messages to {args.users:,} users, {args.rows} per INSERT, {args.backends} backends, "
          f"median of {args.runs}: "
          f"main thread {main_us:.1f} µs/message, process {proc_us:.1f} µs/message "
          f"(runs: {', '.join(f'{r[0]:.0f}/{r[1]:.0f}' for r in results)})")


if __name__ == "__main__":
    main()
