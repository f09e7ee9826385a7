"""A real ``redis-server`` (Debian's package) on a free loopback port, for the cluster tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .servers import free_port


@dataclass
class RedisServer:
    """AOF with fsync per write: a restarted server still has what it acknowledged."""

    dir: Path
    port: int = field(default_factory=free_port)
    password: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: `make test` installs it (Debian package redis-server)"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.command("PING") in ("+PONG", "-NOAUTH Authentication required."):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def lines(self, *args: str) -> list[str]:
        """A command whose reply is integers or an array of short strings: the values."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall((" ".join(args) + "\r\n").encode())
            reply = s.recv(65536).decode().split("\r\n")
        if reply[0].startswith(":"):
            return [reply[0][1:]]
        return [line for line in reply[1:] if line and not line.startswith("$")]

    def command(self, *args: str) -> str:
        """One command by hand (inline protocol): the first line of the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall((" ".join(args) + "\r\n").encode())
            return s.recv(65536).decode().split("\r\n", 1)[0]

