"""Start real CometQL servers for tests: a `cometql serve` subprocess on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

PASSWORD = "CometQLPassword"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """One `cometql serve` process. Use start()/stop(); kill() is a crash (SIGKILL)."""

    data_dir: Path
    password: str = PASSWORD
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    #: Extra environment variables (COMETQL_* settings); the caller's own COMETQL_* are never passed on.
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    output: str = ""

    def start(self, timeout: float = 20) -> ServerProcess:
        cmd = [
            sys.executable, "-m", "cometql.cli", "serve",
            "--host", self.host, "--mysql-port", str(self.port), "--ws-port", str(self.ws_port),
            "--password", self.password, "--data-dir", str(self.data_dir), "--log-level", "warning",
            *self.extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("server did not start listening in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.output += out or ""
        return self.proc.returncode

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def connect(self, user: str | int = "root", database: str | None = "CometQL_v1",
                **kw: object) -> pymysql.Connection:
        return pymysql.connect(host=self.host, port=self.port, user=str(user), password=self.password,
                               database=database, autocommit=True, connect_timeout=5, read_timeout=10, **kw)
