"""Client tests: the slow-starting driver programs get ready in the background while other tests run."""

from __future__ import annotations

import contextlib
import threading

import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    """Compile (javac, go build) and start (the JVM, mysql-connector's C extension) what the collected tests use.

    Each driver with a ``warm_up`` method is readied once, in a daemon thread started
    as soon as the tests are collected, so the builds overlap with the tests that run
    before them instead of adding to the run. A failure is ignored here: the driver's
    first test makes the same call and reports it.
    """
    drivers = {id(d): d for item in session.items
               if hasattr(d := getattr(getattr(item, "cls", None), "driver", None), "warm_up")}

    def warm_up() -> None:
        for driver in drivers.values():
            with contextlib.suppress(Exception):
                driver.warm_up()

    if drivers:
        threading.Thread(target=warm_up, name="warm-up-drivers", daemon=True).start()
