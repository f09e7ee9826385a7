"""The server under test: one the benchmark starts itself, or one already running.

A started server is ``python -m cometql.cli serve`` on free loopback ports with
a temporary data directory; its pid is known, so RSS and CPU can be read from
/proc. With ``tls`` it serves wss:// with a self-signed certificate made for
the run (ECDSA P-256, what most sites serve; ``make_certificate``). For a
running server the pid is optional (``--pid``): without it the memory figures
are left out.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import EXAMPLE_PASSWORD as DEFAULT_PASSWORD
from ._mysql_client import MySQLClient
from ._procfs import CpuMeter, cpu_seconds, listener_pid, nofile_limit, rss_kb

__all__ = ["DEFAULT_PASSWORD", "Restart", "Server", "free_port", "make_certificate", "start_server"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Restart:
    """CLOCK_MONOTONIC ns of a restart's steps, and the CPU the old process spent shutting down."""

    sigterm_ns: int
    exited_ns: int
    listening_ns: int
    shutdown_cpu: float | None


@dataclass
class Server:
    """Where the server listens, and its process when known."""

    host: str
    mysql_port: int
    ws_port: int
    password: str = DEFAULT_PASSWORD
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    log_path: Path | None = None
    started_here: bool = field(default=False)
    #: the command and environment it was started with (``restart`` runs them again)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: wss:// (and https://) on the browser port
    tls: bool = False

    def mysql(self, dev_id: int) -> MySQLClient:
        """A CometQL connection logged in as ``dev_id``."""
        return MySQLClient(self.host, self.mysql_port, str(dev_id), self.password)

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid) if self.pid else None

    def cpu_meter(self) -> CpuMeter | None:
        return CpuMeter(self.pid) if self.pid else None

    def max_sessions(self) -> int | None:
        """Browser sessions the server's open-files limit leaves room for (a margin is kept
        for listeners, the store and CometQL connections); None when the pid is unknown."""
        return nofile_limit(self.pid) - 100 if self.pid else None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {self.proc.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.started_here and self.data_dir is not None:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def restart(self, timeout: float = 30.0, poll: float = 0.002, sig: signal.Signals = signal.SIGTERM) -> Restart:
        """SIGTERM, wait for the exit, start the same command on the same ports and data directory,
        wait until both ports accept again (polled every ``poll`` s).

        A running server not started here is stopped by its ``pid`` and must be brought back by its
        supervisor (systemd, CppComet's watchdog); its new pid is looked up by the listening socket.
        ``sig`` replaces SIGTERM for a server that ignores it (CppComet logs it and goes on: SIGKILL, and
        its watchdog starts it again)."""
        if self.pid is None:
            raise RuntimeError("restarting a running server needs its --pid")
        old = self.pid
        sigterm = time.monotonic_ns()
        os.kill(old, sig)
        shutdown_cpu = self._wait_exit(old, timeout, poll)
        exited = time.monotonic_ns()
        if self.proc is not None:
            with open(self.log_path or os.devnull, "ab") as log:
                self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
            self.pid = self.proc.pid
            return Restart(sigterm, exited, _wait_listening(self, timeout, poll), shutdown_cpu)
        listening = _wait_listening(self, timeout, poll)
        self.pid = listener_pid(self.ws_port)
        return Restart(sigterm, exited, listening, shutdown_cpu)

    def _wait_exit(self, pid: int, timeout: float, poll: float) -> float | None:
        """Wait until ``pid`` is gone (or, for a server that is not our child, no longer listens);
        the CPU seconds it used meanwhile (its last reading: a zombie keeps its counters)."""
        start = last = cpu_seconds(pid)
        deadline = time.monotonic() + timeout
        while True:
            try:
                last = cpu_seconds(pid)
            except OSError:  # reaped by its own parent
                pass
            if self.proc is not None:
                if self.proc.poll() is not None:
                    return last - start
            elif not os.path.exists(f"/proc/{pid}") or listener_pid(self.ws_port) != pid:
                return last - start
            if time.monotonic() > deadline:
                if self.proc is None:
                    raise RuntimeError(f"pid {pid} still listens {timeout:.0f} s after SIGTERM")
                self.proc.kill()
                self.proc.wait()
                return None
            time.sleep(poll)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1 (cert.pem, key.pem) made by openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-days", "2", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"cannot make a certificate for --tls with the openssl command: {exc}") from None
    return cert, key


def start_server(password: str = DEFAULT_PASSWORD, host: str = "127.0.0.1", timeout: float = 20.0,
                 extra_args: tuple[str, ...] = (), tls: bool = False) -> Server:
    """Start ``cometql serve`` on free ports with a fresh data directory; wait until it listens."""
    root = Path(tempfile.mkdtemp(prefix="cometql-bench-"))
    log_path = root / "server.log"
    server = Server(host, free_port(host), free_port(host), password, data_dir=root / "data",
                    log_path=log_path, started_here=True, tls=tls)
    if tls:
        cert, key = make_certificate(root)
        extra_args = (*extra_args, "--tls-cert", str(cert), "--tls-key", str(key))
    cmd = [sys.executable, "-m", "cometql.cli", "serve", "--host", host, "--mysql-port", str(server.mysql_port),
           "--ws-port", str(server.ws_port), "--password", password, "--data-dir", str(server.data_dir),
           "--log-level", "warning", *extra_args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")}
    env["PYTHONUNBUFFERED"] = "1"
    server.cmd, server.env = cmd, env
    with open(log_path, "wb") as log:
        server.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    server.pid = server.proc.pid
    try:
        _wait_listening(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_listening(server: Server, timeout: float, poll: float = 0.05) -> int:
    """The CLOCK_MONOTONIC ns at which both ports accepted a connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            for port in (server.mysql_port, server.ws_port):
                socket.create_connection((server.host, port), timeout=0.5).close()
            return time.monotonic_ns()
        except OSError:
            time.sleep(poll)
    raise RuntimeError(f"the server did not listen within {timeout:.0f} s:\n{server.log_tail()}")
