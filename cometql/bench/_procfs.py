"""Read a process's memory, CPU time and open-files limit from /proc (Linux only).

The benchmark reports server RSS per connection and whether the server or the
load clients were CPU-bound; both come from here so every scenario measures
them the same way.
"""

from __future__ import annotations

import os
import resource
import time

__all__ = ["CpuMeter", "child_pids", "cpu_seconds", "nofile_limit", "rss_kb"]

_TICK = os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (what the kernel counts as resident)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int | str = "self") -> float:
    """CPU seconds (user + system) a process has used so far.

    This process's own time comes from CLOCK_PROCESS_CPUTIME_ID (nanoseconds: a
    fan-out lasts only milliseconds); another's from /proc/<pid>/stat fields 14
    and 15, which count in clock ticks (10 ms) but include exited threads.
    """
    if pid == "self" or pid == os.getpid():
        return time.process_time()
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()  # skip "pid (comm) ", comm may contain spaces
    return (int(fields[11]) + int(fields[12])) / _TICK


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the workers of ``cometql serve --workers``)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                text = f.read()
        except OSError:  # gone meanwhile
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == pid:
            children.append(int(entry))
    return sorted(children)


def nofile_limit(pid: int | None = None) -> int:
    """The soft open-files limit of ``pid`` (this process when None)."""
    if pid is None:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    with open(f"/proc/{pid}/limits", encoding="ascii") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return 1 << 30 if soft == "unlimited" else int(soft)
    raise RuntimeError(f"no open-files limit for pid {pid}")


class CpuMeter:
    """CPU use of one process (or the sum of several) over an interval, as a fraction of one core."""

    def __init__(self, pid: int | str = "self", *more: int) -> None:
        self.pids = (pid, *more)
        self.restart()

    def _total(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids)

    def restart(self) -> None:
        self._cpu = self._total()
        self._wall = time.monotonic()

    def seconds(self) -> tuple[float, float]:
        """(cpu seconds, wall seconds) since the last restart."""
        return self._total() - self._cpu, time.monotonic() - self._wall

    def share(self) -> float:
        cpu, wall = self.seconds()
        return cpu / wall if wall > 0 else 0.0

