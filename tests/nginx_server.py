"""Run Debian's nginx for a test: examples/nginx/cometql.conf, in the foreground, under a temporary prefix.

The example is used as written but for what only a test machine can differ in:
its listening port, the CometQL upstream's port, the certificate files (made
with trustme) and, at ``http`` level, ``proxy_bind`` so that nginx reaches
CometQL from another loopback address than the browser's (then the two are
told apart in ``users_in_pipes``). Each replaced text must occur exactly once
in the example, so an edit of the example that the test would silently skip
fails here instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from .servers import free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nginx" / "cometql.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def example_for_test(text: str, *, port: int, upstream_port: int, cert: Path, key: Path) -> str:
    """The example with the machine-specific parts replaced (each must be there exactly once)."""
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("server 127.0.0.1:8087;", f"server 127.0.0.1:{upstream_port};"),
        ("/etc/letsencrypt/live/comet.example.com/fullchain.pem;", f"{cert};"),
        ("/etc/letsencrypt/live/comet.example.com/privkey.pem;", f"{key};"),
    ):
        assert text.count(old) == 1, f"examples/nginx/cometql.conf should contain {old!r} once"
        text = text.replace(old, new)
    return text


@dataclass
class NginxProcess:
    """``nginx -g 'daemon off;'`` with its own prefix, pid file and logs; ``stop()`` ends it."""

    prefix: Path
    upstream_port: int
    proxy_bind: str = "127.0.0.2"
    port: int = field(default_factory=free_port)
    ca: trustme.CA = field(default_factory=trustme.CA)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> NginxProcess:
        prefix = self.prefix
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        cert, key = prefix / "cert.pem", prefix / "key.pem"
        issued = self.ca.issue_cert("127.0.0.1", "localhost")
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        (prefix / "cometql.conf").write_text(example_for_test(
            EXAMPLE.read_text(), port=self.port, upstream_port=self.upstream_port, cert=cert, key=key))
        temp = "\n".join(f"    {kind}_temp_path {prefix}/tmp/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (prefix / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
{temp}
    proxy_bind {self.proxy_bind};
    include {prefix}/cometql.conf;
}}
""")
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"),
             "-g", "daemon off;"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not listen in time: {self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: the master ends its workers
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
