"""SIGHUP (``systemctl reload``): the config is re-read; logging changes at once, the rest is reported.

The server's output is read line by line while it runs (a reader thread), so
each step waits for the server's own word that it reloaded, not for time.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..servers import PASSWORD, ServerProcess, free_port

HANG_GUARD = 30.0


class Output:
    """The lines a process prints, collected by a thread; ``wait_for`` blocks until one matches."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + HANG_GUARD
        while True:
            for line in self.lines:
                if text in line:
                    self.lines.remove(line)
                    return line
            try:
                self.lines.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r}; output: {self.lines}") from None


def test_sighup_applies_the_log_format_reports_the_rest_and_survives_a_bad_file(tmp_path: Path) -> None:
    ini = tmp_path / "comet.ini"
    ini.write_text("[log]\nformat = text\nlevel = info\n[ws]\nlongpoll_timeout = 25\n")
    mysql_port, ws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")} | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cometql", "serve", "--config", str(ini), "--mysql-port", str(mysql_port),
         "--ws-port", str(ws_port), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = Output(proc)
    try:
        out.wait_for("CometQL (MySQL protocol)")  # the text banner: started

        ini.write_text("[log]\nformat = json\nlevel = info\n[ws]\nlongpoll_timeout = 40\n")
        proc.send_signal(signal.SIGHUP)
        later = json.loads(out.wait_for("takes a restart"))  # already in the new format
        assert later["level"] == "warning" and "longpoll_timeout changed" in later["message"]
        assert json.loads(out.wait_for("reload: configuration re-read"))["message"].endswith("applied: log_format")

        ini.write_text("[log]\nformat = json\n[ws]\nport = not-a-port\n")
        proc.send_signal(signal.SIGHUP)
        error = json.loads(out.wait_for("the running settings stay"))
        assert error["level"] == "error" and "'not-a-port' is not an integer" in error["message"]

        # still serving, on the settings it had
        srv = ServerProcess(tmp_path, port=mysql_port, ws_port=ws_port)
        conn = srv.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
        assert srv.password == PASSWORD
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=HANG_GUARD)
    shutdown = json.loads(out.wait_for("shutting down"))
    assert shutdown["signal"] == "SIGTERM"
    assert proc.returncode == 0
