"""The Java and Go driver programs: compiled once per test run, into a temporary directory.

Both come from Debian packages (``make system-deps``): MariaDB Connector/J and
gson jars for Java, go-sql-driver/mysql's source under /usr/share/gocode for Go,
built the Debian way (GOPATH, no modules: nothing is downloaded). Compiling costs
a second or two, so it happens once (in the background from the end of test
collection: conftest.py) and the result is reused by every test; the directory
(Go's build cache included) is removed when the run ends.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ._run import HERE, ScriptDriver, Session, Settings, Step, run
from ._served import ServedDriver

JARS = ("/usr/share/java/mariadb-java-client.jar", "/usr/share/java/gson.jar")
GOPATH = "/usr/share/gocode"
#: Compiling may be slow on a loaded machine; running is bounded by _run.TIMEOUT as usual.
BUILD_TIMEOUT = 180.0
T = TypeVar("T")


def once(build: Callable[[], T]) -> Callable[[], T]:
    """``build`` runs once, even when the warm-up thread and a test ask at the same time (a failure is retried)."""
    lock = threading.Lock()
    done: list[T] = []

    @functools.wraps(build)
    def wrapper() -> T:
        with lock:
            if not done:
                done.append(build())
            return done[0]

    return wrapper


@once
def _build_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="cometql-drivers-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@once
def java_command() -> tuple[str, ...]:
    """``javac`` JdbcMariadb.java once; the command that runs it."""
    classes = _build_dir() / "java"
    run(["javac", "-d", classes, "-cp", ":".join(JARS), HERE / "JdbcMariadb.java"], timeout=BUILD_TIMEOUT)
    # The client JVM starts fastest with tiered compilation stopped early and the serial collector.
    return ("java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", ":".join((str(classes), *JARS)),
            "JdbcMariadb")


@once
def go_command() -> tuple[str, ...]:
    """``go build`` go_sql_driver.go once, GOPATH mode; the binary."""
    binary = _build_dir() / "go_sql_driver"
    env = {"GO111MODULE": "off", "GOPATH": GOPATH, "GOFLAGS": "", "GOCACHE": str(_build_dir() / "go-cache")}
    run(["go", "build", "-o", binary, HERE / "go_sql_driver.go"], env=env, timeout=BUILD_TIMEOUT)
    return (str(binary),)


@dataclass(frozen=True)
class CompiledDriver:
    """A ScriptDriver whose command exists once ``build`` has run (one process per session: Go starts at once)."""

    name: str
    build: Callable[[], tuple[str, ...]]
    exposes_sqlstate: bool = True

    def warm_up(self) -> None:
        self.build()

    def session(self, settings: Settings, plan: Sequence[Step]) -> Session:
        return ScriptDriver(self.name, self.build(), exposes_sqlstate=self.exposes_sqlstate).session(settings, plan)


#: A JVM takes about a second to start and load Connector/J: one serves the whole run.
JAVA_MARIADB = ServedDriver("Java MariaDB Connector/J", java_command)
#: go-sql-driver 1.5's MySQLError has no SQLSTATE.
GO_SQL_DRIVER = CompiledDriver("Go go-sql-driver/mysql", go_command, exposes_sqlstate=False)
