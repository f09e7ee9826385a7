"""Client tests: the slow-starting driver programs get ready in the background while the first tests run."""

from __future__ import annotations

import contextlib
import threading

import pytest


@pytest.fixture(scope="session", autouse=True)
def _warm_up_drivers(request: pytest.FixtureRequest) -> None:
    """Compile (javac, go build) and start (the JVM, mysql-connector's C extension) what the collected tests use.

    Each driver with a ``warm_up`` method is readied once, in a daemon thread, so the
    builds overlap with the tests before them instead of adding to the run. A failure is
    ignored here: the driver's first test makes the same call and reports it.
    """
    drivers = {id(d): d for item in request.session.items
               if hasattr(d := getattr(item.cls, "driver", None), "warm_up")}

    def warm_up() -> None:
        for driver in drivers.values():
            with contextlib.suppress(Exception):
                driver.warm_up()

    if drivers:
        threading.Thread(target=warm_up, name="warm-up-drivers", daemon=True).start()
