"""``cometql serve --workers N``: N server processes on one machine, one Redis.

Each worker is an ordinary ``cometql serve`` (same flags, same config) with
``COMETQL_WORKER_INDEX`` set, which makes it bind both ports with
SO_REUSEPORT: the kernel spreads new connections over the workers, and the
Redis store makes them one cluster (every worker is a node). The supervisor
only starts them, restarts one that dies, and stops them all on a signal
(trio's ``run_process`` sends SIGTERM on cancellation, SIGKILL 5 s later).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from functools import partial

import trio

from .config import Config
from .errors import ConfigError
from .server import WORKER_ENV

__all__ = ["is_worker", "supervise"]

log = logging.getLogger("cometql.workers")
RESTART_DELAY = 1.0  # doubled after each quick failure (a bad port, a config error), up to a minute
QUICK_FAILURE = 10.0


def is_worker() -> bool:
    return WORKER_ENV in os.environ


async def supervise(config: Config, argv: Sequence[str], running: set[trio.Process]) -> None:
    """Run ``config.workers`` copies of this command until cancelled; ``running`` holds the live ones
    (the supervisor passes SIGHUP on to them)."""
    if 0 in (config.mysql_port, config.ws_port):
        raise ConfigError("workers: both ports must be fixed (not 0) so that every worker binds the same ones")
    async with trio.open_nursery() as nursery:
        for index in range(config.workers):
            nursery.start_soon(_keep_running, index, list(argv), running)


async def _keep_running(index: int, argv: list[str], running: set[trio.Process]) -> None:
    env = {**os.environ, WORKER_ENV: str(index)}
    cmd = [sys.executable, "-m", "cometql.cli", *argv]
    delay = RESTART_DELAY
    while True:
        started = trio.current_time()
        # a session of its own: a Ctrl-C in the terminal reaches the supervisor only, which stops the workers
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(
                partial(trio.run_process, cmd, env=env, check=False, start_new_session=True))
            running.add(proc)
        running.discard(proc)
        delay = delay * 2 if trio.current_time() - started < QUICK_FAILURE else RESTART_DELAY
        delay = min(delay, 60.0)
        log.warning("worker %d exited with status %s; restarting it in %.0f s", index, proc.returncode, delay)
        await trio.sleep(delay)
