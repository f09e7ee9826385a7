"""Read a process's memory, CPU time and open-files limit from /proc (Linux only).

The benchmark reports server RSS per connection and whether the server or the
load clients were CPU-bound; both come from here so every scenario measures
them the same way.
"""

from __future__ import annotations

import os
import resource
import time

__all__ = ["CpuMeter", "child_pids", "cpu_seconds", "listener_pid", "nofile_limit", "peak_rss_kb", "rss_kb"]

_TICK = os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (what the kernel counts as resident)."""
    return _status_kb(pid, "VmRSS:")


def peak_rss_kb(pid: int) -> int:
    """VmHWM of ``pid`` in KiB: the highest RSS it ever had (no sampling can miss a peak)."""
    return _status_kb(pid, "VmHWM:")


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def listener_pid(port: int) -> int | None:
    """The pid holding a listening TCP socket on ``port`` (any address), None when none of ours does:
    the socket's inode from /proc/net/tcp{,6}, then the process whose fd links to it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        except OSError:
            continue
    for entry in os.listdir("/proc") if inodes else ():
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                    return int(entry)
        except OSError:  # not ours, or gone meanwhile
            continue
    return None


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

