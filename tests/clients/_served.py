"""Driver programs that start slowly (a JVM, Python importing a driver) run once per test run, not once per test.

Started with ``--serve``, such a program answers one request per line on stdin,
``{"env": {COMETQL_*...}, "plan": [...]}``, with one session per line on stdout
(the same JSON as a one-shot run; ``{"failure": "..."}`` if the program itself
failed). Each request still opens its own connection, so every test is one
driver session as before; only the start-up is shared. Every answer is awaited
with the usual client timeout, and the process is ended when the run ends.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from ._run import REPO, TIMEOUT, Session, Settings, Step

#: One running program per driver name (the warm-up thread and the tests may ask at once).
_running: dict[str, _Program] = {}
_running_lock = threading.Lock()


class _Program:
    """The process, a thread that reads its answers into a queue, and its stderr in a file."""

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str]) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")}
        full_env.update(env)
        self.stderr: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.proc = subprocess.Popen([*cmd, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, encoding="utf-8", env=full_env, cwd=REPO)
        self.answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        atexit.register(self.stop)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(line)
        self.answers.put("")  # end of output: the program exited

    def ask(self, request: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        try:
            answer = self.answers.get(timeout=TIMEOUT)
        except queue.Empty:
            answer = ""
        if not answer:
            self.stop()
            self.stderr.seek(0)
            raise AssertionError(f"{self.proc.args} gave no answer within {TIMEOUT}s:\n{self.stderr.read()}")
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True)
class ServedDriver:
    """A driver program run with ``--serve``; ``command`` gives its command line (building it if need be)."""

    name: str
    command: Callable[[], tuple[str, ...]]
    extra_env: Mapping[str, str] = field(default_factory=dict)
    exposes_sqlstate: bool = True

    def _program(self) -> _Program:
        with _running_lock:
            program = _running.get(self.name)
            if program is None or program.proc.poll() is not None:
                program = _running[self.name] = _Program(self.command(), self.extra_env)
            return program

    def warm_up(self) -> None:
        """Start the program (building it first if need be) before the first test needs it."""
        self._program()

    def session(self, settings: Settings, plan: Sequence[Step]) -> Session:
        answer = json.loads(self._program().ask(json.dumps({"env": settings.env(), "plan": list(plan)})))
        assert "failure" not in answer, f"{self.name} failed:\n{answer['failure']}"
        return Session.from_json(answer)
