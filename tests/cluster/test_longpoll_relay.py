"""Long-poll behind a plain round-robin balancer (``[ws] advertise``): any node serves any request.

Two nodes on the session's redis-server, each advertising its own browser
port. A session opened on one node is polled, sent to and closed through the
other; a forged session id is refused without any connection being made.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from cometql.config import load_config
from cometql.errors import ConfigError
from cometql.web._relay import cluster_sid, relay_secret, sid_address

from ..redis_server import RedisServer
from ..servers import ServerProcess, free_port
from ..web._wire import http_request, mysql_rows, new_uuid
from .conftest import start_node


def advertising_node(redis: RedisServer, data_dir: Path) -> ServerProcess:
    port = free_port()
    return start_node(redis, data_dir, ws_port=port,
                      env={"COMETQL_ADVERTISE": f"127.0.0.1:{port}", "COMETQL_LONGPOLL_TIMEOUT": "2"})


@pytest.fixture(scope="module")
def pair(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    started = [advertising_node(redis, tmp_path_factory.mktemp(f"adv{i}")) for i in range(2)]
    yield started
    for node in started:
        if node.alive:
            node.stop()


async def connect(node: ServerProcess, dev: int, user_id: int = 0, key: str = "") -> str:
    body = f"sesion={key}&myid={user_id}&devid={dev}&v=4.08&uuid={new_uuid()}&api=js&caps=hb"
    reply = await http_request(node.ws_port, "POST", "/lp/connect", body.encode())
    assert reply.status == 200, reply
    return str(json.loads(reply.body)["sid"])


async def poll(node: ServerProcess, sid: str, cursor: int, wait: bool = True) -> tuple[int, list[dict[str, Any]]]:
    reply = await http_request(node.ws_port, "GET", f"/lp/poll?sid={sid}&cursor={cursor}" + ("" if wait else "&wait=0"))
    assert reply.status == 200, reply
    answer = json.loads(reply.body)
    return answer["cursor"], answer["frames"]


async def test_any_node_serves_a_session_of_another(pair: list[ServerProcess], dev: int) -> None:
    a, b = pair
    mysql_rows(a, dev, "INSERT INTO users_auth (id, hash) VALUES (31, 'k31')")
    sid = await connect(a, dev, 31, "k31")
    cursor, frames = await poll(b, sid, 0)  # through b: the owner's serverInfo
    assert (frames[0]["event"], frames[0]["authorized"]) == ("serverInfo", True)
    reply = await http_request(b.ws_port, "POST", f"/lp/send?sid={sid}", b"subscription\nrelayed")
    assert reply.status == 204
    mysql_rows(b, dev, "INSERT INTO users_messages (id, event, message) VALUES (31, 'n', 'via b')")
    got: list[dict[str, Any]] = []
    round_robin = itertools.cycle((a, b))
    with trio.fail_after(20):
        while not any(f.get("data") == "via b" for f in got):
            cursor, more = await poll(next(round_robin), sid, cursor)
            got += more
    closed = await http_request(b.ws_port, "POST", f"/lp/close?sid={sid}")
    assert closed.status == 204
    assert (await http_request(a.ws_port, "GET", f"/lp/poll?sid={sid}&cursor={cursor}")).status == 404


async def test_a_forged_session_id_is_not_relayed(pair: list[ServerProcess], dev: int) -> None:
    a, b = pair
    sid = await connect(a, dev)
    node, token, address, signature = sid.split(".")
    forged = f"{node}.{token}.{address}.{'A' * len(signature)}"
    assert (await http_request(b.ws_port, "GET", f"/lp/poll?sid={forged}&cursor=0")).status == 404
    assert (await http_request(a.ws_port, "GET", f"/lp/poll?sid={forged}&cursor=0")).status == 404


async def test_relay_latency(pair: list[ServerProcess], dev: int) -> None:
    """The hop's cost (printed with -s; docs/delivery.md quotes it): an immediate poll, direct and relayed."""
    a, b = pair
    sid = await connect(a, dev)
    cursor, _ = await poll(a, sid, 0)
    times: dict[str, list[float]] = {"direct": [], "relayed": []}
    for _ in range(30):
        for name, node in (("direct", a), ("relayed", b)):
            start = time.perf_counter()
            await poll(node, sid, cursor, wait=False)
            times[name].append(time.perf_counter() - start)
    direct, relayed = (statistics.median(times[k]) * 1000 for k in ("direct", "relayed"))
    print(f"long-poll request, median of 30: direct {direct:.2f} ms, relayed {relayed:.2f} ms")
    assert len(times["relayed"]) == 30


def test_session_ids_carry_a_signed_address() -> None:
    secret = relay_secret("pw")
    sid = cluster_sid("0123456789ab", "tok", "10.0.0.5:8087", secret)
    assert sid_address(sid, secret) == ("10.0.0.5", 8087)
    assert sid_address(sid, relay_secret("another password")) is None
    assert sid_address("0123456789ab.tok", secret) is None


@pytest.mark.parametrize(("env", "message"), [
    ({"COMETQL_ADVERTISE": "10.0.0.5:8087"}, "only a cluster"),
    ({"COMETQL_ADVERTISE": "10.0.0.5", "COMETQL_STORE": "redis://127.0.0.1:6379/0"}, "host:port"),
])
def test_advertise_is_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env=env)
