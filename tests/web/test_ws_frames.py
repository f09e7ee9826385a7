"""Every server frame of browser-wire.md §3, byte for byte, over a real WebSocket.

The stock browser library parses these frames itself, so their exact bytes
are the contract: keys sorted, no whitespace, ``'`` written as ``\\u0027``,
and the CppComet quirks kept on purpose (``pipe_count``'s array, no send time
on ``msg`` and ``user_status_*`` frames, web_pipe2 data relayed unescaped).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from ..servers import ServerProcess
from ._wire import SERVER_NAME, Browser, assert_frame, eventually, make_jwt, open_browser

Query = Callable[[str], list[tuple[str, ...]]]


def _hello(authorized: bool, data: str) -> str:
    flag = "true" if authorized else "false"
    return (f'{{"authorized":{flag},"data":"{data}","event":"serverInfo","message_send_time":{{T}},"pipe":"sys",'
            f'"server":"{SERVER_NAME}"}}')


# ------------------------------------------------------------------ serverInfo


async def test_server_info_authorized_by_hash(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'hashOf7')")
    t0 = int(time.time())
    async with open_browser(ws_server, dev, user_id=7, key="hashOf7") as b:
        assert_frame(b.hello, _hello(True, "hashOf7"), since=t0)


async def test_server_info_authorized_by_jwt_stores_a_hash(ws_server: ServerProcess, dev: int, query: Query) -> None:
    token = make_jwt(dev, 9)
    async with open_browser(ws_server, dev, user_id=9, key=token) as b:
        (stored,) = query("SELECT hash FROM users_auth WHERE id = 9")[0]
        assert len(stored) == 32
        assert_frame(b.hello, _hello(True, stored))


async def test_jwt_of_other_user_wrong_secret_or_expired_is_refused(
        ws_server: ServerProcess, dev: int) -> None:
    for user_id, token in ((9, make_jwt(dev, 8)), (9, make_jwt(dev + 1, 9)), (9, make_jwt(dev, 9, ttl=-10))):
        async with open_browser(ws_server, dev, user_id=user_id, key=token) as b:
            assert_frame(b.hello, _hello(False, ""))


async def test_server_info_unauthorized(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'hashOf7')")
    for user_id, key in ((7, "wrong"), (7, ""), (0, "hashOf7"), (8, "hashOf7")):
        async with open_browser(ws_server, dev, user_id=user_id, key=key) as b:
            assert_frame(b.hello, _hello(False, ""))


# ------------------------------------------------------------- user messages


async def test_offline_queue_is_delivered_in_full_then_emptied(ws_server: ServerProcess, dev: int,
                                                               query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    t0 = int(time.time())
    texts = [f"queued {i}" for i in range(14)] + ["it''s"]
    for i, text in enumerate(texts):
        query(f"INSERT INTO users_messages (id, event, message) VALUES (7, 'ev{i}', '{text}')")
    assert len(query("SELECT * FROM users_messages WHERE id = 7")) == len(texts)
    async with open_browser(ws_server, dev, user_id=7, key="h7") as b:
        got = await b.recv_many(len(texts))
        for i, frame in enumerate(got[:-1]):
            assert_frame(frame, f'{{"data":"queued {i}","event":"ev{i}","fromQueue":true,"message_send_time":{{T}},'
                                '"pipe":"msg"}', since=t0)
        assert_frame(got[-1], r'{"data":"it\u0027s","event":"ev14","fromQueue":true,"message_send_time":{T},'
                              r'"pipe":"msg"}', since=t0)
        # written to the socket: delivered, and deleted (the deletion is stored just after the write)
        await eventually(lambda: query("SELECT * FROM users_messages WHERE id = 7") == [])
    async with open_browser(ws_server, dev, user_id=7, key="h7") as again:
        await again.silence()


async def test_users_messages_live_frame_reaches_every_linked_session(ws_server: ServerProcess, dev: int,
                                                                       query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with (open_browser(ws_server, dev, user_id=7, key="h7") as tab1,
                open_browser(ws_server, dev, user_id=7, key="h7") as tab2,
                open_browser(ws_server, dev) as anonymous):
        query("INSERT INTO users_messages (id, event, message) VALUES (7, 'chat', 'hi \"you\"')")
        for tab in (tab1, tab2):
            assert_frame(await tab.recv(), r'{"data":"hi \"you\"","event":"chat","pipe":"msg"}')
        await anonymous.silence()
    assert query("SELECT * FROM users_messages WHERE id = 7") == []


# ---------------------------------------------------------------- publishing


async def test_pipes_messages_publish_frame(ws_server: ServerProcess, dev: int, query: Query) -> None:
    async with open_browser(ws_server, dev) as b:
        await b.subscribe("news")
        t0 = int(time.time())
        query("INSERT INTO pipes_messages (name, event, message) VALUES ('news', 'ev', 'it''s \"é\" \\\\ /')")
        assert_frame(await b.recv(), r'{"data":"it\u0027s \"é\" \\ /","event":"ev","message_send_time":{T},'
                                     r'"pipe":"news"}', since=t0)


async def test_web_pipe2_goes_to_other_subscribers_unescaped_with_report(ws_server: ServerProcess, dev: int,
                                                                       query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with (open_browser(ws_server, dev, user_id=7, key="h7") as sender,
                open_browser(ws_server, dev, user_id=7, key="h7") as other_tab,
                open_browser(ws_server, dev) as anonymous,
                open_browser(ws_server, dev) as elsewhere):
        for b in (sender, other_tab, anonymous):
            await b.subscribe("web_chat")
        await elsewhere.subscribe("web_other")
        t0 = int(time.time())
        await sender.send("web_pipe2", "web_chat", "say", "*", '{"t":"it\'s","n":"a\\b"}')
        # relayed as sent (README: web_pipe2 payloads are not MySQL-escaped), JSON-encoded once
        relayed = r'{\"t\":\"it\u0027s\",\"n\":\"a\\b\"}'
        for b in (other_tab, anonymous):
            assert_frame(await b.recv(), f'{{"data":"{relayed}","event":"say","message_send_time":{{T}},'
                                         '"pipe":"web_chat","user_id":7}', since=t0)
        assert_frame(await sender.recv(), f'{{"data":{{"message":"{relayed}","number_messages":2}},"event":"answer",'
                                          '"message_send_time":{T},"pipe":"_answer_to_web_chat"}', since=t0)
        await sender.silence()
        await elsewhere.silence(0.05)


async def test_web_pipe2_user_id_is_0_for_anonymous_and_for_at_web(ws_server: ServerProcess, dev: int,
                                                                   query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with (open_browser(ws_server, dev, user_id=7, key="h7") as user,
                open_browser(ws_server, dev) as anonymous,
                open_browser(ws_server, dev) as listener):
        await listener.subscribe("web_room")
        await anonymous.send("web_pipe2", "web_room", "e", "*", "from anon")
        assert_frame(await listener.recv(), '{"data":"from anon","event":"e","message_send_time":{T},'
                                            '"pipe":"web_room","user_id":0}')
        await user.send("web_pipe2", "@web_room", "e", "*", "hidden")
        assert_frame(await listener.recv(), '{"data":"hidden","event":"e","message_send_time":{T},'
                                            '"pipe":"web_room","user_id":0}')
        assert_frame(await user.recv(), '{"data":{"message":"hidden","number_messages":1},"event":"answer",'
                                         '"message_send_time":{T},"pipe":"_answer_to_web_room"}')


async def test_web_pipe2_refusals(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with (open_browser(ws_server, dev) as anonymous, open_browser(ws_server, dev, user_id=7, key="h7") as user,
                open_browser(ws_server, dev) as listener):
        await listener.subscribe("webauth_room", "news")
        await anonymous.send("web_pipe2", "webauth_room", "e", "*", "x")
        assert_frame(await anonymous.recv(),
                     '{"data":{"error":"[webauth_pipe_msg2] Invalid user auth. In to channel with name like '
                     'webauth_* can not send messages anonim users","number_messages":-1},"event":"error",'
                     '"message_send_time":{T},"pipe":"sys"}')
        await anonymous.send("web_pipe2", "news", "e", "*", "x")
        assert_frame(await anonymous.recv(),
                     '{"data":{"error":"[pipe_msg2] Invalid channel name. The channel should begin with web_",'
                     '"number_messages":-1},"event":"error","message_send_time":{T},"pipe":"sys"}')
        await user.send("web_pipe2", "webauth_room", "e", "*", "signed")
        assert_frame(await listener.recv(), '{"data":"signed","event":"e","message_send_time":{T},'
                                            '"pipe":"webauth_room","user_id":7}')


# ------------------------------------------------------------ marker answers


async def test_pipe_log_replays_history_oldest_first(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    query("INSERT INTO pipes_settings (name, length) VALUES ('web_log', 3)")
    t0 = int(time.time())
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('web_log', 'e', 'dropped')")
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('web_log', 'e', 'first')")
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('web_log', 'e2', 'it''s')")
    async with open_browser(ws_server, dev, user_id=7, key="h7") as user:
        await user.send("web_pipe2", "web_log", "say", "*", 'raw "q"')
        await user.recv()  # the delivery report
        await user.send("pipe_log", "web_log", "mk0000001", "")
        frames = await user.recv_many(3)
        base = '"message_send_time":{T},"pipe":"web_log","user_id":%d}'
        assert_frame(frames[0], '{"data":"first","event":"e","fromQueue":true,"history":true,' + base % 0, since=t0)
        assert_frame(frames[1], r'{"data":"it\u0027s","event":"e2","fromQueue":true,"history":true,' + base % 0,
                     since=t0)
        assert_frame(frames[2], r'{"data":"raw \"q\"","event":"say","fromQueue":true,"history":true,' + base % 7,
                     since=t0)
        await user.silence()


async def test_pipe_count_answer_is_cppcomets_array(ws_server: ServerProcess, dev: int) -> None:
    async with open_browser(ws_server, dev) as a, open_browser(ws_server, dev) as b:
        await a.subscribe("web_count")
        await b.subscribe("web_count", "track_count")
        await a.send("pipe_count", "web_count", "Mark123456", "")
        assert_frame(await a.recv(), '{"data":["user_in_pipe",2],"event":"user_in_pipe","marker":"Mark123456",'
                                     '"message_send_time":{T},"pipe":"_answer_pipe_count"}')
        await a.send("pipe_count", "track_count", "m2", "")
        assert_frame(await a.recv(), '{"data":["user_in_pipe",1],"event":"user_in_pipe","marker":"m2",'
                                     '"message_send_time":{T},"pipe":"_answer_pipe_count"}')
        await a.send("pipe_count", "news", "m3", "")
        assert_frame(await a.recv(), '{"data":{"error":"[pipe_count] Invalid channel name. The channel should start '
                                     'with web_","number_messages":-1},"event":"error","message_send_time":{T},'
                                     '"pipe":"sys"}')


async def test_track_pipe_users_answer(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with (open_browser(ws_server, dev, user_id=7, key="h7") as user, open_browser(ws_server, dev) as anon):
        await anon.send("track_pipe_users", "track_empty", "mk1")
        assert_frame(await anon.recv(), '{"_info":"answer for track_pipe_users","data":[],"event":"answer",'
                                        '"marker":"mk1","message_send_time":{T},"pipe":"_answer"}')
        await user.subscribe("track_room")
        await anon.subscribe("track_room")
        await user.recv()  # anon's subscription event
        await anon.send("track_pipe_users", "track_room", "mk2")
        assert_frame(await anon.recv(), '{"_info":"answer for track_pipe_users","data":['
                                        f'{{"user_id":7,"uuid":"{user.uuid}"}},{{"user_id":0,"uuid":"{anon.uuid}"}}],'
                                        '"event":"answer","marker":"mk2","message_send_time":{T},"pipe":"_answer"}')
        await anon.send("track_pipe_users", "web_room", "mk3")
        assert_frame(await anon.recv(), '{"data":{"error":"[track_pipe_users] Invalid channel name. The channel '
                                        'should start with track_","user_id":-1},"event":"error",'
                                        '"message_send_time":{T},"pipe":"sys"}')


def _track(event: str, browser: Browser, user_id: int) -> str:
    return (f'{{"data":{{"user_id":{user_id},"uuid":"{browser.uuid}"}},"event":"{event}",'
            '"message_send_time":{T},"pipe":"track_room"}')


async def test_track_events_on_join_resubscribe_and_disconnect(ws_server: ServerProcess, dev: int,
                                                               query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with open_browser(ws_server, dev) as watcher:
        await watcher.subscribe("track_room")
        async with open_browser(ws_server, dev, user_id=7, key="h7") as member:
            await member.subscribe("track_room", "web_x")
            assert_frame(await watcher.recv(), _track("subscription", member, 7))
            await member.subscribe("web_x", "track_room")
            assert_frame(await watcher.recv(), _track("unsubscription", member, 7))
            assert_frame(await watcher.recv(), _track("subscription", member, 7))
            await member.subscribe("web_x")
            assert_frame(await watcher.recv(), _track("unsubscription", member, 7))
            await member.subscribe("track_room")
            assert_frame(await watcher.recv(), _track("subscription", member, 7))
            await member.silence(0.05)
        assert_frame(await watcher.recv(), _track("unsubscription", member, 7))


async def test_user_data_answer(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("""INSERT INTO users_data (id, data) VALUES (7, '{"name":"O''Brien"}')""")
    async with open_browser(ws_server, dev) as anon:
        await anon.send("user_data", "mk1", "7")
        assert_frame(await anon.recv(), r'{"data":{"user_data":"{\"name\":\"O\u0027Brien\"}","user_id":7},'
                                        r'"event":"answer","marker":"mk1","message_send_time":{T},"pipe":"_answer"}')
        await anon.send("user_data", "mk2", "8")
        assert_frame(await anon.recv(), '{"data":{"user_data":"","user_id":8},"event":"answer","marker":"mk2",'
                                        '"message_send_time":{T},"pipe":"_answer"}')
        await anon.send("user_data", "mk3", "x8")
        assert_frame(await anon.recv(), '{"data":{"error":"Invalid user id","user_data":"","user_id":-1},'
                                        '"event":"error","message_send_time":{T},"pipe":"sys"}')


async def _user_status(b: Browser, user_id: int) -> tuple[int, int]:
    """(answer time, seconds since last online) from a user_status request."""
    await b.send("user_status", str(user_id))
    ago, ago2, t = assert_frame(await b.recv(), '{"data":{"data":{T},"last_online_time":{T}},'
                                                f'"event":"user_status_{user_id}",'
                                                '"message_send_time":{T},"pipe":"_answer_user_status"}')
    assert ago == ago2
    return t, ago


async def test_user_status_answer(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with open_browser(ws_server, dev) as anon:
        t, ago = await _user_status(anon, 7)
        assert ago == t + 1  # never seen: users_time -1
        async with open_browser(ws_server, dev, user_id=7, key="h7"):
            t, ago = await _user_status(anon, 7)
            assert ago == t  # online: users_time 0
        await trio.sleep(1.1)
        last_seen = int(await eventually(lambda: _offline_time(query)))
        t, ago = await _user_status(anon, 7)
        assert t - ago == last_seen and ago >= 1


def _offline_time(query: Query) -> str:
    ((value,),) = query("SELECT time FROM users_time WHERE id = 7")
    assert value not in ("0", "-1"), value
    return value
