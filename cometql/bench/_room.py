"""Browser-to-browser rooms: N sessions in one ``web_`` channel, every one of them sending and receiving.

The multiplayer-game and joint-editing case. Each session announces our library's capabilities
(``caps=ack,offset,hb``) and sends ``rate`` messages a second exactly as
``cometApi.web_pipe_send(channel, "m", [sender, seq, t])`` does (``web_pipe2\\n<channel>\\nm\\n*\\n[s,q,t]``),
``t`` being CLOCK_MONOTONIC at the send, which every process on Linux shares. The server relays each
message to the N-1 other sessions (the sender is excluded, browser-wire.md §2.3) and answers the sender
with how many it reached. The sessions' sends are staggered evenly over the period, so the server sees a
steady N x rate messages a second, not bursts.

Every receiver records each arrival (sender, sequence number, latency); afterwards the parent checks that
every session got every other session's messages exactly once, each sender's in its sending order, and
that all sessions saw them in one common order (the union of their arrival sequences has no cycle).
A fast figure with a lost, doubled or reordered message is not a result.

Client and server share this machine's cores: each client process reports its CPU share, and the
report says when a client came near a core (then the latencies include client time).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import time
from array import array
from collections import deque
from collections.abc import Iterable, Sequence

from ._context import Context, cpu_notes, ms, percentile, require_open
from ._loadgen import BenchError, ClientPool, _Worker
from ._results import Result, Target
from ._ws_client import Tally, WsClient, client_frame

__all__ = ["P99_TARGET_MS", "RoomClient", "check_orders", "room"]

#: The target: browser-to-browser p99 on this machine (issue 16).
P99_TARGET_MS = 20.0
CAPS = "ack,offset,hb"
EVENT = "m"
#: A message's id in the order checks: sender << SEQ_BITS | sequence number.
SEQ_BITS = 24
#: What the relayed frame carries: "data":"[sender,seq,t]" (no character JSON or MySQL would escape).
_MESSAGE = re.compile(rb'"data":"\[(\d+),(\d+),(\d+)\]"')
_DELIVERED = re.compile(rb'"number_messages":(-?\d+)')
_ANSWER = b'"pipe":"_answer_to_'
_WARM = re.compile(rb'"event":"w(\d+)"')


class RoomClient(WsClient):
    """A session of the room: records every relayed message and every answer to its own sends."""

    __slots__ = ("order", "lat", "sent", "answers", "warm")

    def __init__(self, request: bytes, channel: str, ready: asyncio.Future[None], tally: Tally) -> None:
        self.order = array("q")  # message ids in arrival order
        self.lat = array("q")  # ns from the send to the arrival, same order
        self.sent = array("q")  # the send times (CLOCK_MONOTONIC ns), same order
        self.answers = array("q")  # number_messages of each answer to this session's sends
        self.warm: set[int] = set()  # the warm-up probes that reached this session
        super().__init__(request, channel, ready, tally)

    def reset(self, match: bytes, latencies: array[int] | None = None) -> None:
        super().reset(match, latencies)
        self.order = array("q")
        self.lat = array("q")
        self.sent = array("q")
        self.answers = array("q")

    def _frame(self, opcode: int, payload: bytes) -> None:
        if (opcode == 0x1 or opcode == 0x2) and self.ready.done():
            now = time.monotonic_ns()
            found = _MESSAGE.search(payload)
            if found is not None:
                self.order.append(int(found[1]) << SEQ_BITS | int(found[2]))
                sent = int(found[3])
                self.sent.append(sent)
                self.lat.append(now - sent)
            elif _ANSWER in payload:
                delivered = _DELIVERED.search(payload)
                self.answers.append(int(delivered[1]) if delivered else -1)
            elif (warm := _WARM.search(payload)) is not None:
                self.warm.add(int(warm[1]))
            else:
                self.other += 1  # position frames, errors
            return
        super()._frame(opcode, payload)


class RoomWorker(_Worker):
    """A client process holding some of the room's sessions."""

    client_class = RoomClient
    caps = CAPS

    def _room(self) -> list[RoomClient]:
        return self.clients  # type: ignore[return-value]  # opened with client_class

    async def do_probe(self, probe: int, send: bool) -> dict:
        """Warm-up probe ``probe``: with ``send``, the first session sends it (event ``w<probe>``); then
        wait until this worker's sessions have it (5 s at most). The subscriptions have landed once it
        reached N-1 sessions: a check that works on any server (CppComet's answer counts 0)."""
        clients = self._room()
        if send:
            clients[0].send(client_frame(f"web_pipe2\n{clients[0].channel}\nw{probe}\n*\n[]"))
        others = clients[1:] if send else clients
        deadline = time.monotonic() + 5
        while any(probe not in c.warm for c in others) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return {"reached": sum(probe in c.warm for c in others)}

    async def do_run(self, indices: list[int], start_ns: int, rate: float, count: int, sessions: int,
                     timeout: float, grace: float) -> dict:
        """Session ``indices[i]`` of ``sessions`` sends ``count`` messages at ``rate``/s from ``start_ns``
        (its k-th at start + k/rate + index/(sessions x rate)); then wait until every session has the
        others' messages (or ``timeout``), and ``grace`` seconds more to catch duplicates."""
        clients = self._room()
        if len(indices) != len(clients):
            raise BenchError(f"{len(indices)} indices for {len(clients)} sessions")
        self.cpu.restart()
        period = 1e9 / rate
        slots = sorted(zip(indices, clients, strict=True), key=lambda slot: slot[0])
        prefixes = {index: f"web_pipe2\n{client.channel}\n{EVENT}\n*\n[{index}," for index, client in slots}
        late_max = 0
        for k in range(count):
            for index, client in slots:
                due = start_ns + int(k * period + index * period / sessions)
                now = time.monotonic_ns()
                if due > now:
                    await asyncio.sleep((due - now) / 1e9)
                now = time.monotonic_ns()
                late_max = max(late_max, now - due)
                client.send(client_frame(f"{prefixes[index]}{k},{now}]"))
        sent_ns = time.monotonic_ns()
        expected = (sessions - 1) * count
        deadline = time.monotonic() + timeout
        while any(len(c.order) < expected and not c.lost for c in clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        done_ns = time.monotonic_ns()
        busy_cpu_s, busy_wall_s = self.cpu.seconds()
        if grace:
            await asyncio.sleep(grace)
        return {
            "orders": {index: client.order.tobytes() for index, client in slots},
            "latencies": b"".join(client.lat.tobytes() for _, client in slots),
            "sent": b"".join(client.sent.tobytes() for _, client in slots),
            "answers": {index: client.answers.tobytes() for index, client in slots},
            "other": sum(c.other for c in clients),
            "lost": sum(c.lost for c in clients),
            "late_max_ns": late_max,
            "sent_ns": sent_ns,
            "done_ns": done_ns,
            "busy_cpu_share": busy_cpu_s / busy_wall_s if busy_wall_s > 0 else 0.0,
        }


def check_orders(orders: dict[int, array[int]], sessions: int, count: int) -> dict:
    """Did every session get every other session's messages exactly once, each sender's in sending
    order, all in one common order? ``orders``: each session's arrivals (message ids) in order."""
    every = {s << SEQ_BITS | q for s in range(sessions) for q in range(count)}
    exact = in_sending_order = 0
    edges: set[tuple[int, int]] = set()
    for receiver, order in orders.items():
        own = {receiver << SEQ_BITS | q for q in range(count)}
        if len(order) == len(every) - count and set(order) == every - own:
            exact += 1
        last: dict[int, int] = {}
        ordered = True
        for mid in order:
            sender = mid >> SEQ_BITS
            if last.get(sender, -1) >= mid:
                ordered = False
            last[sender] = mid
        in_sending_order += ordered
        edges.update(itertools.pairwise(order))
    common = not _has_cycle(edges)
    return {"exact": exact, "in_sending_order": in_sending_order, "common_order": common,
            "agree_with_first": len(orders) if common else _agreeing(orders), "receivers": len(orders)}


def _agreeing(orders: dict[int, array[int]]) -> int:
    """How many sessions saw the messages they share with the first session in its order."""
    first, reference = min(orders.items())
    agree = 0
    for receiver, order in orders.items():
        mine = [m for m in order if m >> SEQ_BITS != first]
        theirs = [m for m in reference if m >> SEQ_BITS != receiver]
        agree += mine == theirs
    return agree


def _has_cycle(edges: Iterable[tuple[int, int]]) -> bool:
    """Whether the precedence graph of consecutive arrivals has a cycle (Kahn's algorithm): without
    one, a single order exists that every session's arrivals follow."""
    after: dict[int, list[int]] = {}
    before: dict[int, int] = {}
    for a, b in edges:
        after.setdefault(a, []).append(b)
        before[b] = before.get(b, 0) + 1
        before.setdefault(a, 0)
    ready = deque(node for node, n in before.items() if n == 0)
    seen = 0
    while ready:
        node = ready.popleft()
        seen += 1
        for nxt in after.get(node, ()):
            before[nxt] -= 1
            if before[nxt] == 0:
                ready.append(nxt)
    return seen != len(before)


def _wait_room(pool: ClientPool, sessions: int, timeout: float = 30.0) -> None:
    """Until one session's message reaches all N-1 others (their subscriptions have landed)."""
    deadline = time.monotonic() + timeout
    reached = 0
    for probe in itertools.count():
        replies = pool.command([("probe", probe, w == 0) for w in range(len(pool))], 15)
        reached = sum(r["reached"] for r in replies)
        if reached == sessions - 1 or time.monotonic() > deadline:
            break
    if reached != sessions - 1:
        raise BenchError(f"a message in the room reached {reached} sessions, expected {sessions - 1}")


def room_once(ctx: Context, sessions: int = 50, rate: float = 10, duration: float = 30,
              label: str = "") -> Result:
    """One run: ``sessions`` in one web_ channel, each sending ``rate`` messages/s for ``duration`` s."""
    if sessions < 2:
        raise BenchError("a room needs at least 2 sessions")
    count = max(1, round(rate * duration))
    channel = ctx.channel("web", label or f"room{rate:g}".replace(".", "_"))
    procs = ctx.client_procs or 2
    result = Result("room", f"room {sessions} sessions x {rate:g}/s",
                    {"sessions": sessions, "rate": rate, "duration": duration, "client_procs": procs})
    srv = ctx.server
    with ClientPool(srv.host, srv.ws_port, ctx.dev_id, procs, worker=RoomWorker) as pool:
        require_open(ctx.open(pool, [channel] * sessions, f"room: {sessions} sessions", concurrency=16), sessions)
        _wait_room(pool, sessions)
        pool.broadcast(("reset", b"", False), 10)
        parts = [list(range(w, sessions, len(pool))) for w in range(len(pool))]  # as ctx.open dealt them
        start_ns = time.monotonic_ns() + 200_000_000
        meter = ctx.server_meter()
        with ctx.reporter.phase(f"room: {sessions} x {count} messages at {rate:g}/s each"):
            replies = pool.command([("run", part, start_ns, rate, count, sessions, 30.0, 0.3) for part in parts],
                                   timeout=duration + 90)
        try:
            server = meter.seconds() if meter is not None else None
        except OSError:  # /proc/<pid> is gone
            server = None
            result.notes.append(f"the server process ({srv.pid}) exited during the run")
        pool.broadcast(("close",), 30)
    _report(result, replies, sessions, count, rate, duration, start_ns, server)
    return result


def _report(result: Result, replies: Sequence[dict], sessions: int, count: int, rate: float, duration: float,
            start_ns: int, server: tuple[float, float] | None) -> None:
    orders = {int(r): array("q", raw) for reply in replies for r, raw in reply["orders"].items()}
    lat, sent = array("q"), array("q")
    for reply in replies:
        lat.frombytes(reply["latencies"])
        sent.frombytes(reply["sent"])
    ordered = sorted(lat)
    worst: dict[int, int] = {}  # second of the run -> the slowest delivery of a message sent in it
    for t, latency in zip(sent, lat, strict=True):
        second = (t - start_ns) // 1_000_000_000
        if latency > worst.get(second, 0):
            worst[second] = latency
    checks = check_orders(orders, sessions, count)
    answers = [n for reply in replies for raw in reply["answers"].values() for n in array("q", raw)]
    expected = sessions * count * (sessions - 1)
    done_ns = max(reply["done_ns"] for reply in replies)
    span_s = (done_ns - start_ns) / 1e9
    result.add("browser-to-browser p50", ms(statistics.median(ordered)) if ordered else None, "ms")
    result.add("browser-to-browser p99", ms(percentile(ordered, 0.99)) if ordered else None, "ms",
               Target("<=", P99_TARGET_MS))
    result.add("browser-to-browser max", ms(ordered[-1]) if ordered else None, "ms")
    result.add("messages in/s", sessions * count / span_s, "/s")
    result.add("relayed deliveries/s", len(ordered) / span_s, "/s")
    if server is not None:
        result.add("server CPU per relayed delivery", server[0] / max(1, len(ordered)) * 1e6, "µs")
    result.add("sessions with every message exactly once", 100 * checks["exact"] / sessions, "%", Target(">=", 100))
    one_order = checks["common_order"] and checks["in_sending_order"] == sessions
    result.add("sessions in one common order", 100 * checks["agree_with_first"] / sessions if one_order or
               not checks["common_order"] else 0.0, "%", Target(">=", 100))
    if not checks["common_order"]:
        result.notes.append(f"no single order fits every session's arrivals: {checks['agree_with_first']} of "
                            f"{sessions} sessions saw the messages they share with the first in its order")
    if checks["in_sending_order"] != sessions:
        result.notes.append(f"{sessions - checks['in_sending_order']} sessions got a sender's messages out of "
                            "their sending order")
    late_ms = max(reply["late_max_ns"] for reply in replies) / 1e6
    result.details.update({
        "expected_deliveries": expected, "received": len(ordered), **checks,
        "answers": len(answers), "answers_reporting_all": sum(n == sessions - 1 for n in answers),
        "other_frames": sum(r["other"] for r in replies), "lost": sum(r["lost"] for r in replies),
        "send_late_max_ms": round(late_ms, 2), "span_s": round(span_s, 3),
        "server_cpu_s": None if server is None else round(server[0], 3),
        "max_ms_by_second": [round(ms(worst.get(s, 0)), 1) for s in range(max(worst, default=-1) + 1)],
    })
    if len(answers) != sessions * count or result.details["answers_reporting_all"] != len(answers):
        counts = sorted(set(answers))[:5]
        result.notes.append(f"{len(answers)} answers to {sessions * count} sends, "
                            f"{result.details['answers_reporting_all']} reporting the {sessions - 1} deliveries "
                            f"(number_messages seen: {', '.join(map(str, counts))})")
    if late_ms > 2 * 1000 / rate:
        result.notes.append(f"a client process sent up to {late_ms:.1f} ms late: it could not keep the rate")
    cpu_notes(result, [r["busy_cpu_share"] for r in replies],
              None if server is None else server[0] / server[1])


def room(ctx: Context, sessions: int = 50, rates: Sequence[float] = (10,), duration: float = 30) -> list[Result]:
    """One run per rate (messages/s per session), in order; with several, a sweep that stops after the
    first rate whose p99 passes ``P99_TARGET_MS`` and says between which rates it did."""
    results: list[Result] = []
    for rate in rates:
        result = room_once(ctx, sessions, rate, duration)
        results.append(result)
        if result.figure("browser-to-browser p99").ok is False:
            break
    if len(rates) > 1:
        results.append(_sweep(results, sessions))
    return results


def _sweep(runs: Sequence[Result], sessions: int) -> Result:
    summary = Result("room", f"room sweep {sessions} sessions", {"rates": [r.params["rate"] for r in runs]})
    passed = [r for r in runs if r.figure("browser-to-browser p99").ok]
    missed = [r for r in runs if r.figure("browser-to-browser p99").ok is False]
    best = passed[-1] if passed else None
    summary.add("highest rate with p99 ≤ 20 ms", best.params["rate"] if best else None, "/s per session")
    if best is not None:
        summary.add("its relayed deliveries/s", best.figure("relayed deliveries/s").value, "/s")
    if missed:
        first = missed[0]
        summary.add("p99 passes 20 ms at", first.params["rate"], "/s per session")
        summary.notes.append(f"p99 {first.figure('browser-to-browser p99').value:.1f} ms at "
                             f"{first.params['rate']:g}/s per session "
                             f"({first.figure('relayed deliveries/s').value:,.0f} deliveries/s)")
    else:
        summary.notes.append("p99 stayed within 20 ms at every rate tried")
    return summary
