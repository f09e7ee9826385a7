"""Run real MySQL clients against the test server and bring back what they saw.

Every client test drives an actual program a CometQL user has (the mysql CLI,
PHP mysqli and PDO, Node's `mysql` and `mysql2`, Ruby's mysql2, Perl's DBI, Java's
JDBC, Go's database/sql, Python's drivers). All but the Python ones are small
programs next to this file that read a *plan* (a JSON list of statements) on
stdin and print a JSON *session*; ``ScriptDriver`` runs them (``_compiled.py``
builds the Java and Go ones once per test run), and ``_dbapi.py`` produces the
same shape in-process for Python's drivers, so one contract (``_contract.py``)
checks all of them. Every subprocess has a timeout so a hung
client fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..servers import ServerProcess

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATABASE = "CometQL_v1"
#: Seconds any one client program may run; they normally take well under one.
TIMEOUT = 20.0


@dataclass(frozen=True)
class Settings:
    """Where and how a client logs in; handed to scripts and examples as COMETQL_* variables."""

    host: str
    port: int
    user: str
    password: str
    database: str = DATABASE

    @classmethod
    def for_dev(cls, server: ServerProcess, dev: int, *, password: str | None = None) -> Settings:
        return cls(server.host, server.port, str(dev), server.password if password is None else password)

    def env(self) -> dict[str, str]:
        """The test scripts read COMETQL_USER/DB; the examples read COMETQL_DEV, as users would set it."""
        return {
            "COMETQL_HOST": self.host, "COMETQL_PORT": str(self.port), "COMETQL_USER": self.user,
            "COMETQL_DEV": self.user, "COMETQL_PASSWORD": self.password, "COMETQL_DB": self.database,
        }


def run(cmd: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None, input: str | None = None,
        check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a program with extra environment variables; on failure show its output in the assertion."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")}
    full_env.update(env or {})
    proc = subprocess.run([os.fspath(c) for c in cmd], input=input, capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False, cwd=REPO)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def mysql_cli(settings: Settings, *args: str, input: str | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    """`mysql -h H -P P -u USER -pPASSWORD DB ARGS...`, exactly as a shell user would type it."""
    cmd = ["mysql", "-h", settings.host, "-P", str(settings.port), "-u", settings.user,
           f"-p{settings.password}", settings.database, *args]
    return run(cmd, input=input, check=check)


# ---------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SqlError:
    code: int
    message: str
    sqlstate: str | None  # None where the driver does not expose it


@dataclass(frozen=True)
class Result:
    """One statement's outcome: an OK (affected/insert_id), a result set (columns/rows) or an error."""

    affected: int | None = None
    insert_id: int | None = None
    columns: list[str] | None = None
    rows: list[list[Any]] | None = None
    error: SqlError | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        if "error" in data:
            return cls(error=SqlError(**data["error"]))
        return cls(affected=int(data["affected"]), insert_id=int(data["insert_id"]),
                   columns=data["columns"], rows=data["rows"])


@dataclass(frozen=True)
class Session:
    connect_error: SqlError | None
    results: list[Result] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        error = data["connect_error"]
        return cls(SqlError(**error) if error else None, [Result.from_json(r) for r in data["results"]])


#: One statement: SQL text, optionally with ``?`` parameters the driver fills in its own way.
Step = dict[str, Any]


def step(sql: str, *params: object) -> Step:
    return {"sql": sql, "params": list(params)} if params else {"sql": sql}


class Driver(Protocol):
    name: str
    exposes_sqlstate: bool

    def session(self, settings: Settings, plan: Sequence[Step]) -> Session: ...


@dataclass(frozen=True)
class ScriptDriver:
    """A client script (PHP, Node) that reads a plan on stdin and prints a session as JSON."""

    name: str
    cmd: tuple[str, ...]
    extra_env: Mapping[str, str] = field(default_factory=dict)
    exposes_sqlstate: bool = True

    def session(self, settings: Settings, plan: Sequence[Step]) -> Session:
        proc = run(self.cmd, env={**settings.env(), **self.extra_env}, input=json.dumps(list(plan)))
        return Session.from_json(json.loads(proc.stdout))


PHP_MYSQLI = ScriptDriver("PHP mysqli", ("php", str(HERE / "php_mysqli.php")))
PHP_PDO_EMULATED = ScriptDriver("PHP PDO (emulated prepares)", ("php", str(HERE / "php_pdo.php")),
                                {"COMETQL_PDO_EMULATE": "1"})
PHP_PDO_NATIVE = ScriptDriver("PHP PDO (native prepares)", ("php", str(HERE / "php_pdo.php")),
                              {"COMETQL_PDO_EMULATE": "0"})
NODE_MYSQL = ScriptDriver("Node mysql", ("node", str(HERE / "node_mysql.js")))
NODE_MYSQL2_QUERY = ScriptDriver("Node mysql2 .query()", ("node", str(HERE / "node_mysql2.js")),
                                 {"COMETQL_MYSQL2_API": "query"})
NODE_MYSQL2_EXECUTE = ScriptDriver("Node mysql2 .execute()", ("node", str(HERE / "node_mysql2.js")),
                                   {"COMETQL_MYSQL2_API": "execute"})
RUBY_MYSQL2 = ScriptDriver("Ruby mysql2", ("ruby", str(HERE / "ruby_mysql2.rb")))
PERL_DBD_MARIADB = ScriptDriver("Perl DBD::MariaDB", ("perl", str(HERE / "perl_dbi.pl")), {"COMETQL_DBD": "MariaDB"})
PERL_DBD_MYSQL = ScriptDriver("Perl DBD::mysql", ("perl", str(HERE / "perl_dbi.pl")), {"COMETQL_DBD": "mysql"})
