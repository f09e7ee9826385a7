"""The long-poll fallback (cometql/web/_longpoll.py): same frames and commands as the
WebSocket, held polls, nothing lost between two polls, CORS, and expiry.

Runs on ``tuned_server`` (polls held 1.5 s, sessions expire 1 s after their
last poll) so a poll that has nothing to return costs little time.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import trio

from ..servers import ServerProcess
from ._wire import SERVER_NAME, HttpReply, assert_frame, eventually, http_request, mysql_rows, new_uuid, open_browser
from .conftest import LONGPOLL_TIMEOUT, SESSION_TTL


@dataclass
class LongPollSession:
    """A long-poll browser: connect once, then send commands and poll with a cursor."""

    server: ServerProcess
    sid: str
    uuid: str

    @classmethod
    async def connect(cls, server: ServerProcess, dev: int, *, user_id: int = 0, key: str = "") -> LongPollSession:
        uuid = new_uuid()
        body = f"sesion={key}&myid={user_id}&devid={dev}&v=4.08&uuid={uuid}&api=js".encode()
        reply = await http_request(server.ws_port, "POST", "/lp/connect", body, headers={"Content-Type": "text/plain"})
        assert reply.status == 200, reply
        answer = json.loads(reply.body)
        assert answer["cursor"] == 0 and set(answer) == {"cursor", "sid"}
        return cls(server, answer["sid"], uuid)

    async def send(self, *lines: str) -> None:
        reply = await http_request(self.server.ws_port, "POST", f"/lp/send?sid={self.sid}", "\n".join(lines).encode())
        assert (reply.status, reply.body) == (204, b""), reply

    async def poll_raw(self, cursor: int) -> HttpReply:
        return await http_request(self.server.ws_port, "GET", f"/lp/poll?sid={self.sid}&cursor={cursor}",
                          timeout=LONGPOLL_TIMEOUT + 5)

    async def poll(self, cursor: int) -> tuple[int, list[str]]:
        """(new cursor, frames as their exact JSON texts)."""
        reply = await self.poll_raw(cursor)
        assert reply.status == 200, reply
        return split_poll(reply.body.decode())

    async def collect(self, cursor: int, count: int) -> list[str]:
        """Poll until ``count`` frames after ``cursor`` have arrived (they may come in several polls)."""
        frames: list[str] = []
        with trio.fail_after(LONGPOLL_TIMEOUT * 3):
            while len(frames) < count:
                cursor, more = await self.poll(cursor)
                frames += more
        return frames


def split_poll(body: str) -> tuple[int, list[str]]:
    """Cut a poll body ``{"cursor":N,"frames":[...]}`` into its frames, byte for byte as sent."""
    head = re.match(r'\{"cursor":(\d+),"frames":\[', body)
    assert head is not None, body
    frames: list[str] = []
    decoder = json.JSONDecoder()
    pos = head.end()
    while body[pos] != "]":
        _, end = decoder.raw_decode(body, pos)
        frames.append(body[pos:end])
        pos = end + (body[end] == ",")
    assert body[pos:] == "]}", body
    return int(head.group(1)), frames


def _publish(server: ServerProcess, dev: int, channel: str, message: str) -> None:
    mysql_rows(server, dev, f"INSERT INTO pipes_messages (name, event, message) VALUES ('{channel}', 'e', '{message}')")


def _frame(channel: str, message: str) -> str:
    return f'{{"data":"{message}","event":"e","message_send_time":{{T}},"pipe":"{channel}"}}'


async def test_first_poll_carries_server_info(tuned_server: ServerProcess, dev: int) -> None:
    mysql_rows(tuned_server, dev, "INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    t0 = int(time.time())
    lp = await LongPollSession.connect(tuned_server, dev, user_id=7, key="h7")
    reply = await lp.poll_raw(0)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert_frame(reply.body.decode(), '{"cursor":1,"frames":[{"authorized":true,"data":"h7","event":"serverInfo",'
                                      f'"message_send_time":{{T}},"pipe":"sys","server":"{SERVER_NAME}"}}]}}', since=t0)


async def test_publish_arrives_in_a_held_poll(tuned_server: ServerProcess, dev: int) -> None:
    lp = await LongPollSession.connect(tuned_server, dev)
    cursor, _ = await lp.poll(0)
    await lp.send("subscription", "web_lp")
    result: list[tuple[int, list[str]]] = []

    async def held() -> None:
        result.append(await lp.poll(cursor))

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(held)
        await trio.sleep(0.3)
        assert not result, "the poll should be held while there is nothing to send"
        await trio.to_thread.run_sync(_publish, tuned_server, dev, "web_lp", "pushed")
    assert trio.current_time() - started < LONGPOLL_TIMEOUT, "the held poll was not woken by the publish"
    ((new_cursor, frames),) = result
    assert new_cursor == cursor + 1
    assert len(frames) == 1
    assert_frame(frames[0], _frame("web_lp", "pushed"))


async def test_a_lost_poll_reply_loses_nothing_and_acked_frames_go(tuned_server: ServerProcess, dev: int) -> None:
    lp = await LongPollSession.connect(tuned_server, dev)
    await lp.send("subscription", "web_lp")
    _publish(tuned_server, dev, "web_lp", "one")
    _publish(tuned_server, dev, "web_lp", "two")
    first = await lp.poll(0)
    assert first[0] == 3 and len(first[1]) == 3  # serverInfo, one, two
    again = await lp.poll(0)  # as if the first reply never reached the browser
    assert again == first
    assert_frame(again[1][1], _frame("web_lp", "one"))
    assert_frame(again[1][2], _frame("web_lp", "two"))
    _publish(tuned_server, dev, "web_lp", "three")
    cursor, frames = await lp.poll(3)  # acknowledges 1..3
    assert cursor == 4 and len(frames) == 1
    assert_frame(frames[0], _frame("web_lp", "three"))
    _publish(tuned_server, dev, "web_lp", "four")
    cursor, frames = await lp.poll(0)  # an old cursor cannot bring back acknowledged frames
    assert cursor == 5
    assert [json.loads(f)["data"] for f in frames] == ["three", "four"]


async def test_commands_and_web_pipe2_across_transports(tuned_server: ServerProcess, dev: int) -> None:
    lp = await LongPollSession.connect(tuned_server, dev)
    cursor, _ = await lp.poll(0)
    async with open_browser(tuned_server, dev) as ws:
        await ws.subscribe("web_mixed")
        await lp.send("subscription", "web_mixed")
        await lp.send("web_pipe2", "web_mixed", "say", "*", "it's lp")
        assert_frame(await ws.recv(), r'{"data":"it\u0027s lp","event":"say","message_send_time":{T},'
                                      r'"pipe":"web_mixed","user_id":0}')
        await lp.send("pipe_count", "web_mixed", "mk1", "")
        await ws.send("web_pipe2", "web_mixed", "say", "*", "from ws")
        frames = await lp.collect(cursor, 3)
    assert_frame(frames[0], r'{"data":{"message":"it\u0027s lp","number_messages":1},"event":"answer",'
                            r'"message_send_time":{T},"pipe":"_answer_to_web_mixed"}')
    assert_frame(frames[1], '{"data":["user_in_pipe",2],"event":"user_in_pipe","marker":"mk1",'
                            '"message_send_time":{T},"pipe":"_answer_pipe_count"}')
    assert_frame(frames[2], '{"data":"from ws","event":"say","message_send_time":{T},"pipe":"web_mixed",'
                            '"user_id":0}')


async def test_unknown_or_closed_session_is_404(tuned_server: ServerProcess, dev: int) -> None:
    port = tuned_server.ws_port
    for method, path in (("GET", "/lp/poll?sid=nope&cursor=0"), ("POST", "/lp/send?sid=nope"),
                         ("POST", "/lp/close?sid=nope"), ("GET", "/lp/poll?cursor=0")):
        reply = await http_request(port, method, path, b"" if method == "POST" else None)
        assert (reply.status, reply.body) == (404, b'{"error":"unknown session"}'), (method, path)
    lp = await LongPollSession.connect(tuned_server, dev)
    reply = await http_request(port, "POST", f"/lp/close?sid={lp.sid}", b"")
    assert reply.status == 204
    assert (await lp.poll_raw(0)).status == 404


async def test_connect_with_bad_parameters_gives_cppcomets_error(tuned_server: ServerProcess) -> None:
    reply = await http_request(tuned_server.ws_port, "POST", "/lp/connect", b"sesion=abc&myid=1")
    assert reply.status == 400
    assert json.loads(reply.body) == {"error": "Error code 406(Invalid request, no public key found [1])",
                                      "error_code": 406}


async def test_cors_preflight_and_origin_echo(tuned_server: ServerProcess, dev: int) -> None:
    origin = "https://page.example.test"
    preflight = await http_request(tuned_server.ws_port, "OPTIONS", "/lp/connect", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    body = f"sesion=&myid=0&devid={dev}&v=4.08&uuid=&api=js".encode()
    reply = await http_request(tuned_server.ws_port, "POST", "/lp/connect", body, headers={"Origin": origin})
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == origin


async def test_session_online_while_polling_then_expires(tuned_server: ServerProcess, dev: int) -> None:
    srv = tuned_server
    mysql_rows(srv, dev, "INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    lp = await LongPollSession.connect(srv, dev, user_id=7, key="h7")
    cursor, _ = await lp.poll(0)
    await lp.send("subscription", "web_lp_online")
    polled_until = trio.current_time() + 2 * SESSION_TTL
    while trio.current_time() < polled_until:  # keep polling for longer than the session TTL
        cursor, _ = await lp.poll(cursor)
        assert mysql_rows(srv, dev, "SELECT time FROM users_time WHERE id = 7") == [("0",)]
        assert mysql_rows(srv, dev, "SELECT * FROM pipes WHERE name = 'web_lp_online'") == [("web_lp_online", "1")]
    left = int(time.time())

    def offline() -> bool:
        ((seen,),) = mysql_rows(srv, dev, "SELECT time FROM users_time WHERE id = 7")
        assert seen != "0"
        assert left <= int(seen) <= int(time.time())
        return True

    await eventually(offline, timeout=SESSION_TTL + 5)
    assert mysql_rows(srv, dev, "SELECT * FROM pipes WHERE name = 'web_lp_online'") == [("web_lp_online", "0")]
    assert (await lp.poll_raw(cursor)).status == 404


async def test_users_messages_reach_a_longpoll_user(tuned_server: ServerProcess, dev: int) -> None:
    srv = tuned_server
    mysql_rows(srv, dev, "INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    mysql_rows(srv, dev, "INSERT INTO users_messages (id, event, message) VALUES (7, 'ev', 'while away')")
    lp = await LongPollSession.connect(srv, dev, user_id=7, key="h7")
    cursor, frames = await lp.poll(0)
    if len(frames) < 2:  # the queue is read from the store after the session opened: maybe the next poll
        cursor, more = await lp.poll(cursor)
        frames += more
    assert len(frames) == 2
    assert_frame(frames[1], '{"data":"while away","event":"ev","fromQueue":true,"message_send_time":{T},'
                            '"pipe":"msg"}')
    await eventually(lambda: mysql_rows(srv, dev, "SELECT * FROM users_messages WHERE id = 7") == [])
    mysql_rows(srv, dev, "INSERT INTO users_messages (id, event, message) VALUES (7, 'ev', 'live')")
    cursor, frames = await lp.poll(cursor)
    assert frames == ['{"data":"live","event":"ev","pipe":"msg"}']
