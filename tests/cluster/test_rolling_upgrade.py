"""A rolling upgrade of a two-node cluster from the previous version loses nothing (issue 13).

The previous version is the one before reliable delivery (commit 263c12f: no channel offsets, queues
as plain hashes held in every node's memory, another bus entry format). It comes from
``fixtures/cometql-263c12f.tar.gz`` (``git archive 263c12f cometql``: a shallow CI clone has no old
commits), unpacked and run with the same interpreter and packages as this version.

Nodes A and B start on the old version with sessions on both and personal messages queued for offline
users; A is stopped (SIGTERM) and started again on this version; channel and personal messages go
through both nodes in the mixed phase, queued users log in on either; then B is upgraded the same way.
Every channel message reaches each subscriber exactly once, every personal message its user exactly
once, nothing stays queued, and the channel with history has one stream: offsets 1..n on both nodes,
in the order each node published (``cometql/cluster/_compat.py`` says how).
"""

from __future__ import annotations

import tarfile
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import trio
from trio_websocket import ConnectionClosed

from cometql.redisurl import RedisAddress
from cometql.store.resp import RedisConnection

from ..redis_server import RedisServer
from ..servers import ServerProcess
from ..web._wire import Browser, open_browser
from ..web.conftest import wait_for_port
from .conftest import NODE_TIMEOUT

FIXTURE = Path(__file__).parent / "fixtures" / "cometql-263c12f.tar.gz"
PLAIN, HIST = "up_plain", "up_hist"
CHANNELS = (PLAIN, HIST)
WAIT = 60  # a hang guard: frames cross two nodes and Redis on a loaded machine


async def until(check: Callable[[], bool], what: Callable[[], str]) -> None:
    """Wait until ``check()`` holds (a hang guard of ``WAIT`` s, not a speed requirement)."""
    with trio.move_on_after(WAIT):
        while not check():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"not within {WAIT} s: {what()}")


def unpack_old(into: Path) -> Path:
    """The previous version's ``cometql`` package, ready for PYTHONPATH."""
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(into, filter="data")
    assert (into / "cometql" / "cli.py").exists()
    return into


@dataclass
class Node:
    name: str
    proc: ServerProcess
    old: bool


def start(redis: RedisServer, data_dir: Path, name: str, *, old_src: Path | None,
          ports: ServerProcess | None = None) -> Node:
    """A node of the old version (``old_src``: its package first on the path, and the working directory
    not on it, where this version's package is) or of this one, on ``ports``' ports if given."""
    env = {"COMETQL_NODE_TIMEOUT": str(NODE_TIMEOUT)}
    if old_src is not None:
        env |= {"PYTHONPATH": str(old_src), "PYTHONSAFEPATH": "1"}
    data_dir.mkdir()
    proc = ServerProcess(data_dir, extra_args=("--store", redis.url), env=env)
    if ports is not None:
        proc.port, proc.ws_port = ports.port, ports.ws_port
    proc.start()
    wait_for_port(proc.ws_port)
    return Node(name, proc, old_src is not None)


@dataclass
class Session:
    """A browser session that records every channel and personal message it gets, and acks with ``ack``."""

    name: str
    browser: Browser
    acks: bool
    channel: dict[str, list[dict[str, object]]] = field(default_factory=lambda: {c: [] for c in CHANNELS})
    personal: list[str] = field(default_factory=list)
    expect_channel: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CHANNELS})

    async def read(self) -> None:
        try:
            while True:
                await self.handle(await self.browser.ws.get_message())
        except ConnectionClosed:
            pass

    async def handle(self, message: str | bytes) -> bool:
        """Record one frame (acknowledge a personal message that has an id); True for the sync answer."""
        frame = orjson.loads(message)
        pipe = frame.get("pipe")
        if pipe in CHANNELS:
            self.channel[pipe].append(frame)
        elif pipe == "msg":
            self.personal.append(frame["data"])
            if self.acks and "id" in frame:
                await self.browser.send("ack", str(frame["id"]))
        return frame.get("marker") == "sync"

    async def sync(self) -> None:
        """Every earlier command of the session is applied (frames before the answer are recorded)."""
        await self.browser.send("pipe_count", "web_sync", "sync", "")
        with trio.fail_after(WAIT):
            while not await self.handle(await self.browser.ws.get_message()):
                pass

    def got(self, channel: str) -> list[str]:
        return [str(f["data"]) for f in self.channel[channel]]

    def has_all(self) -> bool:
        return all(not (Counter(self.expect_channel[c]) - Counter(self.got(c))) for c in CHANNELS)

    def check_exactly_once(self) -> None:
        for c in CHANNELS:
            assert Counter(self.got(c)) == Counter(self.expect_channel[c]), f"{self.name} on {c}"


class Cluster:
    def __init__(self, stack: AsyncExitStack, nursery: trio.Nursery, dev: int) -> None:
        self.stack, self.nursery, self.dev = stack, nursery, dev
        self.subscribers: dict[str, list[Session]] = {}  # node name -> its live channel subscribers
        self.users: dict[int, list[str]] = {}  # user -> personal messages sent
        self.user_sessions: dict[int, list[Session]] = {}
        self.sessions: list[Session] = []
        self.sent = 0

    async def session(self, node: Node, name: str, *, user: int = 0, caps: str = "",
                      channels: tuple[str, ...] = ()) -> Session:
        browser = await self.stack.enter_async_context(
            open_browser(node.proc, self.dev, user_id=user, key=f"h{user}" if user else "", caps=caps))
        s = Session(name, browser, "ack" in caps)
        if channels:
            await browser.send("subscription", *channels)
        await s.sync()
        self.sessions.append(s)
        if channels:
            self.subscribers.setdefault(node.name, []).append(s)
        if user:
            self.user_sessions.setdefault(user, []).append(s)
        self.nursery.start_soon(s.read)
        return s

    def sql(self, node: Node, *statements: str) -> list[tuple[str, ...]]:
        conn = node.proc.connect(self.dev)
        try:
            rows: list[tuple[str, ...]] = []
            with conn.cursor() as cur:
                for st in statements:
                    cur.execute(st)
                    rows = [tuple(r) for r in cur.fetchall()]
            return rows
        finally:
            conn.close()

    async def publish(self, nodes: list[Node], tag: str, count: int = 5) -> None:
        """``count`` messages per node on each channel; every live subscriber expects them all."""
        for node in nodes:
            messages = [f"{tag}-{node.name}-{i}" for i in range(count)]
            for c in CHANNELS:
                for subs in self.subscribers.values():
                    for s in subs:
                        s.expect_channel[c].extend(messages)
            await trio.to_thread.run_sync(lambda n=node, m=messages: self.sql(n, *(
                f"INSERT INTO pipes_messages (name, event, message) VALUES ('{c}', 'ev', '{x}')"
                for x in m for c in CHANNELS)))
        live = [s for subs in self.subscribers.values() for s in subs]
        await until(lambda: all(s.has_all() for s in live), lambda: "; ".join(
            f"{s.name} misses {missing}" for s in live for c in CHANNELS
            if (missing := sorted((Counter(s.expect_channel[c]) - Counter(s.got(c))).elements()))))

    async def send(self, node: Node, users: list[int], tag: str, count: int = 3) -> None:
        """``count`` personal messages to each user, through ``node``."""
        statements = []
        for u in users:
            for i in range(count):
                message = f"{tag}-{node.name}-u{u}-{i}"
                self.users.setdefault(u, []).append(message)
                statements.append(f"INSERT INTO users_messages (id, event, message) VALUES ({u}, 'ev', '{message}')")
        await trio.to_thread.run_sync(lambda: self.sql(node, *statements))

    def personal_of(self, user: int) -> list[str]:
        return [m for s in self.user_sessions.get(user, ()) for m in s.personal]

    async def delivered(self, users: list[int]) -> None:
        """Each user got what was sent to it (the check of exactly once is ``check_personal``)."""
        def missing(u: int) -> list[str]:
            return sorted((Counter(self.users[u]) - Counter(self.personal_of(u))).elements())
        await until(lambda: not any(missing(u) for u in users),
                    lambda: "; ".join(f"user {u} misses {missing(u)}" for u in users if missing(u)))

    def check_personal(self, users: list[int]) -> None:
        for u in users:
            assert Counter(self.personal_of(u)) == Counter(self.users[u]), f"user {u}"

    async def nothing_queued(self, node: Node, users: list[int]) -> None:
        """Every personal message of ``users`` delivered and acknowledged: none left in the store."""
        ids = ", ".join(map(str, users))
        await until(lambda: self.sql(node, f"SELECT COUNT(*) FROM users_messages WHERE id IN ({ids})") == [("0",)],
                    lambda: f"queued for {users} on {node.name}: " + repr(self.sql(
                        node, f"SELECT * FROM users_messages WHERE id IN ({ids})")))

    def leaving(self, node: Node) -> list[Session]:
        """The node is about to stop: its subscribers expect nothing more."""
        return self.subscribers.pop(node.name, [])


@asynccontextmanager
async def cluster(dev: int) -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:  # the readers outlive the sessions (closed first, by the stack)
        async with AsyncExitStack() as stack:
            yield Cluster(stack, nursery, dev)
        nursery.cancel_scope.cancel()


def version_keys(redis: RedisServer) -> list[str]:
    return redis.lines("KEYS", "cq:v:*")


async def appends_on_the_bus(redis: RedisServer) -> list[list[object]]:
    """The ``AppendHistory`` values of the newest bus entries, as written (the format a writer chose)."""
    conn = await RedisConnection.open(RedisAddress.parse(redis.url))
    try:
        entries = await conn.call("XREVRANGE", "cq:bus", "+", "-", "COUNT", 200)
    finally:
        await conn.aclose()
    out = []
    for _, fields in entries:
        data = dict(zip(fields[::2], fields[1::2], strict=True))
        out += [v for v in orjson.loads(data.get(b"d", b"[]")) if v[0] == "AppendHistory"]
    return out


def history(frames: list[dict[str, object]]) -> list[tuple[str, int]]:
    return [(str(f["data"]), int(str(f["offset"]))) for f in frames]


async def recover_all(node: Node, dev: int) -> tuple[str, list[tuple[str, int]]]:
    """A session with the offset capability asks for the whole stream of the history channel."""
    async with open_browser(node.proc, dev, caps="offset") as b:
        await b.send("subscription", HIST)
        position = orjson.loads(await b.recv(timeout=WAIT))
        assert position["event"] == "position", position
        epoch, last = position["data"]["epoch"], position["data"]["offset"]
        await b.send("pipe_log", HIST, "mk", epoch, "0")
        frames = [orjson.loads(f) for f in await b.recv_many(last + 1, timeout=WAIT)]
        end = frames.pop()
        assert end["event"] == "recovery" and end["data"]["recovered"] is True, end
        return epoch, history(frames)


def in_publish_order(got: list[str], sent: list[str]) -> bool:
    """``got`` holds each node's messages of ``sent`` in the order that node published them."""
    for node in ("A", "B"):
        mine = [m for m in sent if f"-{node}-" in m]
        if [m for m in got if f"-{node}-" in m] != mine:
            return False
    return True


async def test_a_rolling_upgrade_of_two_nodes_loses_nothing(tmp_path: Path, dev: int) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis").start()
    old_src = unpack_old(tmp_path / "old")
    nodes: list[Node] = []
    try:
        async with cluster(dev) as cl:
            # ---- both nodes on the old version
            a = start(redis, tmp_path / "a0", "A", old_src=old_src)
            b = start(redis, tmp_path / "b0", "B", old_src=old_src)
            nodes += [a, b]
            assert version_keys(redis) == []  # neither writes a version: both are the old one
            users = [101, 102, 103, 104, 105, 106, 111, 112, 113, 114, 201, 202, 211, 212, 213, 221, 222]
            await trio.to_thread.run_sync(lambda: cl.sql(a, f"INSERT INTO pipes_settings (name, length) VALUES "
                                                            f"('{HIST}', 1000)", *(
                f"INSERT INTO users_auth (id, hash) VALUES ({u}, 'h{u}')" for u in users)))
            sa0 = await cl.session(a, "SA0", channels=CHANNELS)
            await cl.session(b, "SB0", channels=CHANNELS)  # checked when B stops, as SB1
            await cl.session(a, "U201", user=201)
            await cl.session(b, "U202", user=202)
            await cl.publish([a, b], "p0")
            for node in (a, b):
                await cl.send(node, [201, 202], "live0")
                await cl.send(node, [101, 102, 103, 104, 105, 106], "queued0")
            await cl.publish([a, b], "p0fence")
            await cl.delivered([201, 202])

            # ---- A upgraded: the old A stops, this version starts on its ports
            cl.leaving(a)
            sa0.check_exactly_once()
            cl.check_personal([201])
            await trio.to_thread.run_sync(a.proc.stop)
            a = start(redis, tmp_path / "a1", "A", old_src=None, ports=a.proc)
            nodes.append(a)
            assert len(version_keys(redis)) == 1  # the new A; B has none: A writes for it
            sa1s = await cl.session(a, "SA1s", channels=CHANNELS)
            sa1c = await cl.session(a, "SA1c", channels=CHANNELS, caps="ack,offset")
            await cl.session(b, "SB1", channels=CHANNELS)
            await cl.session(a, "U211", user=211, caps="ack")
            await cl.session(a, "U212", user=212)
            await cl.session(b, "U213", user=213)
            await cl.session(a, "U101", user=101)  # queued on the old nodes, read by the new one
            await cl.session(a, "U102", user=102, caps="ack")
            await cl.session(b, "U103", user=103)  # queued by both, from the old node's memory
            await cl.publish([a, b], "p1")
            for node in (a, b):
                await cl.send(node, [211, 212, 213], "live1")
                await cl.send(node, [111, 112, 113, 114], "queued1")  # offline: both layouts in one queue
            await cl.session(a, "U111", user=111, caps="ack")
            await cl.session(b, "U112", user=112)
            await cl.publish([a, b], "p1fence")
            assert all(len(v) == 5 for v in await appends_on_the_bus(redis))  # the old format, for B
            mixed = [101, 102, 103, 111, 112, 202, 211, 212, 213]
            await cl.delivered(mixed)
            await cl.nothing_queued(a, mixed)

            # ---- B upgraded
            for s in cl.leaving(b):
                s.check_exactly_once()
            cl.check_personal([103, 112, 202, 213])
            await trio.to_thread.run_sync(b.proc.stop)
            b = start(redis, tmp_path / "b1", "B", old_src=None, ports=b.proc)
            nodes.append(b)
            assert len(version_keys(redis)) == 2
            sb2s = await cl.session(b, "SB2s", channels=CHANNELS)
            sb2c = await cl.session(b, "SB2c", channels=CHANNELS, caps="ack,offset")
            await cl.session(a, "U221", user=221, caps="ack")
            await cl.session(b, "U222", user=222, caps="ack")
            await cl.session(a, "U104", user=104, caps="ack")
            await cl.session(b, "U105", user=105, caps="ack")
            await cl.session(b, "U106", user=106)
            await cl.session(a, "U113", user=113, caps="ack")
            await cl.session(b, "U114", user=114)
            await cl.publish([a, b], "p2")
            for node in (a, b):
                await cl.send(node, [221, 222], "live2")
            await cl.publish([a, b], "p2fence")
            newest = (await appends_on_the_bus(redis))[:10]  # no old node left: this version's format again
            assert len(newest) == 10 and all(len(v) == 6 for v in newest)
            await cl.delivered(users)
            await cl.nothing_queued(a, users)
            await cl.nothing_queued(b, users)

            # ---- exactly once, everywhere
            for s in (sa1s, sa1c, sb2s, sb2c):
                s.check_exactly_once()
            cl.check_personal(users)
            for s in (sa1c, sb2c):  # the new nodes' stream of the history channel: offsets in arrival order
                assert all("offset" in f for f in s.channel[HIST]), f"{s.name}: a message without its offset"
                offsets = [off for _, off in history(s.channel[HIST])]
                assert offsets == sorted(set(offsets)), f"{s.name}: {offsets}"
            sent = [m for m in sa0.expect_channel[HIST]] + [m for m in sa1s.expect_channel[HIST]]
            epoch_a, on_a = await recover_all(a, dev)
            epoch_b, on_b = await recover_all(b, dev)
            assert (epoch_a, on_a) == (epoch_b, on_b)
            assert [off for _, off in on_a] == list(range(1, len(sent) + 1))
            assert Counter(m for m, _ in on_a) == Counter(sent)
            assert in_publish_order([m for m, _ in on_a], sent)
    finally:
        for node in nodes:
            if node.proc.alive:
                node.proc.stop()
        redis.stop()
        for node in nodes:
            for bad in ("Traceback", "skipped"):  # no crash, and no bus entry a node could not read
                assert bad not in node.proc.output, f"{node.name}:\n{node.proc.output[-4000:]}"
