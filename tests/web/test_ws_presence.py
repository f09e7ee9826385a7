"""Presence seen from both faces: browser sessions change what CometQL's tables report,
and CometQL statements (auth removal, token revocation) end browser sessions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import trio

from ..servers import ServerProcess
from ._wire import assert_frame, eventually, make_jwt, open_browser

Query = Callable[[str], list[tuple[str, ...]]]

ONLINE = '{"data":"online","event":"online","pipe":"user_status_7"}'
OFFLINE = '{"data":"offline","event":"offline","pipe":"user_status_7"}'


def _pipes(query: Query) -> set[tuple[str, ...]]:
    return set(query("SELECT * FROM pipes"))


async def test_user_status_online_and_offline_events(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with open_browser(ws_server, dev) as watcher:
        await watcher.subscribe("user_status_7")
        async with open_browser(ws_server, dev, user_id=7, key="h7"):
            assert_frame(await watcher.recv(), ONLINE)
            async with open_browser(ws_server, dev, user_id=7, key="h7"):
                await watcher.silence()  # a second device is no news
            await watcher.silence()  # nor is its leaving while the first stays
        assert_frame(await watcher.recv(), OFFLINE)
        async with open_browser(ws_server, dev, user_id=7, key="wrong"):
            await watcher.silence()  # an unauthorized session is not the user


async def test_private_channels_skipped_for_anonymous_only(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with open_browser(ws_server, dev) as anon:
        await anon.subscribe("web_a", "private_x", "web_b")
        assert _pipes(query) == {("web_a", "1"), ("web_b", "1")}
        async with open_browser(ws_server, dev, user_id=7, key="h7") as user:
            await user.subscribe("private_x", "web_a")
            assert _pipes(query) == {("web_a", "2"), ("web_b", "1"), ("private_x", "1")}
            query("INSERT INTO pipes_messages (name, event, message) VALUES ('private_x', 'e', 'secret')")
            assert_frame(await user.recv(), '{"data":"secret","event":"e","message_send_time":{T},"pipe":"private_x"}')
            await anon.silence()


async def test_subscription_replaces_the_whole_set(ws_server: ServerProcess, dev: int, query: Query) -> None:
    async with open_browser(ws_server, dev) as b:
        await b.subscribe("chan_a", "chan_b")
        assert _pipes(query) == {("chan_a", "1"), ("chan_b", "1")}
        await b.subscribe("chan_c")
        assert _pipes(query) == {("chan_c", "1")}
        query("INSERT INTO pipes_messages (name, event, message) VALUES ('chan_a', 'e', 'old')")
        query("INSERT INTO pipes_messages (name, event, message) VALUES ('chan_c', 'e', 'new')")
        assert_frame(await b.recv(), '{"data":"new","event":"e","message_send_time":{T},"pipe":"chan_c"}')
        await b.silence()
        await b.send("subscription", "x", "chan_d")  # a 1-char name ends the list: nothing is subscribed
        await b.sync()
        assert _pipes(query) == set()
    assert _pipes(query) == set()


async def test_delete_users_auth_closes_the_users_sessions(ws_server: ServerProcess, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    async with (open_browser(ws_server, dev, user_id=7, key="h7") as tab1,
                open_browser(ws_server, dev, user_id=7, key="h7") as tab2,
                open_browser(ws_server, dev) as anon):
        query("DELETE FROM users_auth WHERE id = 7")
        assert await tab1.closed() == 1008
        assert await tab2.closed() == 1008
        await anon.sync()
    async with open_browser(ws_server, dev, user_id=7, key="h7") as again:
        assert '"authorized":false' in again.hello


async def test_revoked_jwt_closes_its_session(ws_server: ServerProcess, dev: int, query: Query) -> None:
    token = make_jwt(dev, 12)
    async with open_browser(ws_server, dev, user_id=12, key=token) as b:
        assert '"authorized":true' in b.hello
        query(f"INSERT INTO revoked_tokens (token) VALUES ('{token}')")
        assert await b.closed() == 1008
    async with open_browser(ws_server, dev, user_id=12, key=token) as again:
        assert '"authorized":false' in again.hello


async def test_users_time_zero_while_online_last_seen_after(ws_server: ServerProcess, dev: int,
                                                            query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    assert query("SELECT time FROM users_time WHERE id = 7") == [("-1",)]
    async with open_browser(ws_server, dev, user_id=7, key="h7"):
        assert query("SELECT * FROM users_time WHERE id = 7") == [("7", "0")]
        async with open_browser(ws_server, dev, user_id=7, key="h7"):
            pass
        await trio.sleep(0.2)
        assert query("SELECT time FROM users_time WHERE id = 7") == [("0",)]  # one device is still online
        left = int(time.time())

    def last_seen() -> int:
        ((value,),) = query("SELECT time FROM users_time WHERE id = 7")
        assert value != "0"
        return int(value)

    assert left <= await eventually(last_seen) <= int(time.time())


async def test_users_in_pipes_row_carries_the_browser_headers(ws_server: ServerProcess, dev: int,
                                                              query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'h7')")
    headers = [("User-Agent", "Mozilla/5.0 (TestBrowser)"), ("Origin", "https://app.example.test"),
               ("Accept-Language", "fr-CH, fr;q=0.9")]
    async with open_browser(ws_server, dev, user_id=7, key="h7", headers=headers) as b:
        await b.subscribe("web_seen")
        assert query("SELECT * FROM users_in_pipes WHERE name = 'web_seen'") == [
            ("web_seen", "7", b.uuid, "Mozilla/5.0 (TestBrowser)", "127.0.0.1", "https://app.example.test",
             "fr-CH, fr;q=0.9"),
        ]
    await eventually(lambda: query("SELECT * FROM users_in_pipes WHERE name = 'web_seen'") == [])


async def test_max_uptime_closes_old_connections_cleanly(tmp_path) -> None:
    """[ws] maxUptime: an older connection is closed with 1001 (the library reconnects)."""
    from trio_websocket import ConnectionClosed

    server = ServerProcess(tmp_path, env={"COMETQL_MAX_UPTIME": "1"}).start()
    try:
        async with open_browser(server, 5) as b:
            with trio.fail_after(5):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await b.ws.get_message()
            assert closed.value.reason.code == 1001
    finally:
        server.stop()
