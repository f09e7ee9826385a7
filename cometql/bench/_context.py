"""What every scenario shares: the server under test, its admin connection, and the waits.

A figure is only worth reporting once the server agrees with the clients:
sessions the clients call open must be counted online, subscriptions must have
landed before a publish, closed sessions must be gone before the next scenario
starts counting. Those waits, the sizing of client pools and the CPU notes are
the same for every scenario, so they live here once and the scenario modules
hold only what they measure.

Every time is CLOCK_MONOTONIC (``time.monotonic_ns``), which all processes on
Linux share, so a publisher's send time and a client worker's receive time can
be subtracted. Channel names carry a per-run token, so runs against a shared
server (the tests' session server, a developer's running one) do not see each
other.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._loadgen import MAX_PER_WORKER, BenchError, ClientPool
from ._mysql_client import MySQLClient, MySQLError, sql_quote
from ._procfs import CpuMeter
from ._report import Reporter
from ._results import Result
from ._server import Server

__all__ = ["BUSY", "Context", "cpu_notes", "insert_sql", "merge", "ms", "percentile", "require_open", "share"]

BUSY = 0.9  # a process at this share of one core or more counts as saturated


def insert_sql(channel: str, event: str, message: str) -> str:
    return (f"INSERT INTO pipes_messages (name, event, message) VALUES "
            f"({sql_quote(channel)}, {sql_quote(event)}, {sql_quote(message)})")


@dataclass
class Context:
    """The server a run measures, how it reports progress, and the waits on the server's view."""

    server: Server
    reporter: Reporter = field(default_factory=lambda: Reporter(quiet=True))
    dev_id: int = 77
    #: worker processes per pool (None: enough for the open-files limit, at least 2)
    client_procs: int | None = None
    #: capabilities the load clients' sessions announce (``--caps``; "" as CppComet's library); None: each
    #: scenario's own (the library's: ``ack,offset,hb``)
    caps: str | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    #: what a peer server (CppComet and the like) could not show, said once per run in the output
    peer_notes: list[str] = field(default_factory=list)
    _admin: MySQLClient | None = None
    _status_keys: frozenset[str] | None = None

    @property
    def admin(self) -> MySQLClient:
        """One CometQL connection for control statements and timed single INSERTs."""
        if self._admin is None:
            self._admin = self.server.mysql(self.dev_id)
        return self._admin

    def channel(self, kind: str, index: int | str) -> str:
        return f"{kind}_{self.token}_{index}"

    def pool(self, sessions: int, **kwargs: Any) -> ClientPool:
        """Enough client processes for ``sessions`` (``kwargs`` go to ``ClientPool``: its worker class)."""
        needed = max(1, math.ceil(sessions / MAX_PER_WORKER))
        return ClientPool(self.server.host, self.server.ws_port, self.dev_id, max(needed, self.client_procs or 2),
                          caps=self.caps, tls=self.server.tls, **kwargs)

    def _status(self) -> dict[str, str]:
        """``SHOW STATUS`` as a dict; empty on a peer that does not have it."""
        try:
            status = self.admin.status()
        except MySQLError:
            status = {}
        if self._status_keys is None:
            self._status_keys = frozenset(status)
        return status

    @property
    def is_cometql(self) -> bool:
        """Whether the server is CometQL (its ``SHOW STATUS`` has ``messages_published``); a peer such as
        CppComet is measured with what every compatible server answers (CppComet's ``frontend_online``
        is a statistics counter, 0 unless its statistics are on, so it is not trusted)."""
        if self._status_keys is None:
            self._status()
        return "messages_published" in (self._status_keys or ())

    def peer_note(self, text: str) -> None:
        if text not in self.peer_notes:
            self.peer_notes.append(text)

    def online(self) -> int | None:
        """Browser sessions the server counts; None on a peer without the counter."""
        status = self._status()  # a cluster node also counts the other nodes' sessions
        if not self.is_cometql:
            self.peer_note("sessions online not checked: the server's SHOW STATUS does not count them")
            return None
        return int(status.get("cluster_frontend_online", status["frontend_online"]))

    def published(self) -> int | None:
        """``messages_published``; None on a peer without it (CppComet)."""
        value = self._status().get("messages_published")
        return None if value is None else int(value)

    def server_meter(self) -> CpuMeter | None:
        """The server's CPU from now on (None when its pid is unknown)."""
        return self.server.cpu_meter()

    def cap(self, n: int, result_notes: list[str]) -> int:
        """``n`` limited to what the server's open-files limit allows (noted when it bites)."""
        cap = self.server.max_sessions()
        if cap is not None and n > cap:
            result_notes.append(f"N capped at {cap:,}: the server's open-files limit is {cap + 100:,} "
                                "(it cannot be raised on this machine)")
            return cap
        return n

    def open(self, pool: ClientPool, channels: Sequence[str], what: str, concurrency: int = 64) -> dict:
        """Open one session per channel entry, with a progress bar; a summary of the workers' replies."""
        with self.reporter.phase(what, total=len(channels)) as phase:
            replies = pool.open(channels, timeout=60 + len(channels) / 100, concurrency=concurrency,
                                progress=phase.advance)
            phase.update(sum(r["ok"] for r in replies))
        return {
            "ok": sum(r["ok"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "start_ns": min(r["start_ns"] for r in replies),
            "end_ns": max(r["end_ns"] for r in replies),
            "client_cpu": [r["cpu_share"] for r in replies],
            "errors": [e for r in replies for e in r["errors"]][:3],
        }

    def wait_subscribed(self, expected: Counter[str], timeout: float = 30.0) -> None:
        """Poll the ``pipes`` table until every channel has its expected subscriber count."""
        names = sorted(expected)
        deadline = time.monotonic() + timeout
        while True:
            seen: dict[str, int] = {}
            for i in range(0, len(names), 200):
                batch = ", ".join(sql_quote(n) for n in names[i:i + 200])
                try:
                    rows = self.admin.query(f"SELECT name, users FROM pipes WHERE name IN ({batch})")
                except MySQLError as exc:  # a peer without the pipes table: give the subscriptions time
                    self.peer_note(f"subscriptions not checked on the server ({exc}): waited 2 s instead")
                    time.sleep(2.0)
                    return
                for name, users in rows:
                    seen[str(name)] = int(users or 0)
            if all(seen.get(n, 0) >= expected[n] for n in names):
                return
            if time.monotonic() > deadline:
                short = sum(max(0, expected[n] - seen.get(n, 0)) for n in names)
                raise BenchError(f"{short} subscriptions had not landed after {timeout:.0f} s")
            time.sleep(0.05)

    def online_since(self, base: int | None) -> int | None:
        """Sessions online beyond ``base`` (None when the server cannot count them)."""
        online = self.online()
        return None if online is None or base is None else online - base

    def wait_online(self, target: int | None, timeout: float = 30.0) -> float | None:
        """Seconds until the server counts ``target`` browser sessions (closed ones have left); on a
        peer that cannot count them, 1 s of grace instead (and None)."""
        start = time.monotonic()
        if target is None or self.online() is None:
            time.sleep(1.0)
            return None
        while self.online() != target:
            if time.monotonic() - start > timeout:
                raise BenchError(f"the server still counts {self.online()} sessions, expected {target}")
            time.sleep(0.05)
        return time.monotonic() - start

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


def require_open(summary: dict, wanted: int) -> None:
    """Fail the scenario unless every session of ``Context.open``'s summary opened."""
    if summary["failed"]:
        raise BenchError(f"{summary['failed']} of {wanted} sessions failed to open: {summary['errors']}")


def merge(replies: Iterable[dict]) -> dict:
    """One view of several workers' ``wait`` replies."""
    replies = list(replies)
    counts: Counter[int] = Counter()
    for r in replies:
        counts.update({int(k): v for k, v in r["counts"].items()})
    firsts = [r["first_min_ns"] for r in replies if r["first_min_ns"]]
    return {
        "counts": counts,
        "lost": sum(r["lost"] for r in replies),
        "short": sum(r["short"] for r in replies),
        "frames": sum(r["frames"] for r in replies),
        "other": sum(r["other"] for r in replies),
        "first_min_ns": min(firsts, default=0),
        "first_max_ns": max((r["first_max_ns"] for r in replies), default=0),
        "last_max_ns": max((r["last_max_ns"] for r in replies), default=0),
        "client_cpu": [r["cpu_share"] for r in replies],
        "client_busy_cpu_s": sum(r["busy_cpu_s"] for r in replies),
    }


def cpu_notes(result: Result, client_cpu: Sequence[float], server_cpu: float | None) -> None:
    """Record CPU shares and say who was the bottleneck."""
    result.details["client_cpu"] = [round(c, 3) for c in client_cpu]
    result.details["server_cpu"] = None if server_cpu is None else round(server_cpu, 3)
    busiest = max(client_cpu, default=0.0)
    if server_cpu is not None:
        result.add("server CPU (of one core)", 100 * server_cpu, "%")
    result.add("busiest client process CPU", 100 * busiest, "%")
    if busiest >= BUSY:
        result.notes.append(f"a load client process ran at {busiest:.0%} of a core: the clients may have "
                            "limited this figure")
    if server_cpu is not None and server_cpu >= BUSY:
        result.notes.append(f"the server ran at {server_cpu:.0%} of a core (server-bound)")
    cores = os.cpu_count() or 1
    total = sum(client_cpu) + (server_cpu or 0.0)
    if total >= BUSY * cores and busiest < BUSY:
        result.notes.append(f"the machine's {cores} cores were busy ({total:.0%} of a core in all): clients and "
                            "server competed for CPU")


def ms(ns: float) -> float:
    return ns / 1e6


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def share(meter: CpuMeter | None) -> float | None:
    """``meter``'s CPU share since it started (None without a meter)."""
    return None if meter is None else meter.share()
