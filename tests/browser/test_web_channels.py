"""Browser-to-browser features: web_pipe_send, delivery reports, counts, history, track_ channels.

Two independent Chromium instances (``browser`` and ``browser2``) act as two
users, each with its own connection and uuid.
"""

from __future__ import annotations

from .helpers import TRANSPORT_PARAMS, Browser, Query, wait_subscribed


def test_web_pipe_send_reaches_other_page(browser: Browser, browser2: Browser, transport: str, dev: int,
                                          query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (5, 'hash5')")
    sender = browser.open(dev_id=dev, user_id=5, user_key="hash5", subs="web_room.say,#web_room",
                          **TRANSPORT_PARAMS[transport])
    receiver = browser2.open(dev_id=dev, subs="web_room.say", **TRANSPORT_PARAMS[transport])
    assert sender.wait_connected() is True
    receiver.wait_connected()
    wait_subscribed(query, "web_room", sender.uuid, receiver.uuid)

    assert sender.js("return cometApi.web_pipe_send('web_room', 'say', {text: \"it's me\", n: 1})") is True

    [got] = receiver.wait_events("web_room.say")
    assert got["data"] == {"text": "it's me", "n": 1}
    assert got["server_info"]["pipe"] == "web_room"
    assert got["server_info"]["event"] == "say"
    assert got["server_info"]["user_id"] == 5  # stamped by the server: the sender is authorized
    [report] = sender.wait_events("#web_room")
    assert report["server_info"]["pipe"] == "_answer_to_web_room"
    assert report["data"]["number_messages"] == 1  # the receiver; the sender is excluded
    assert sender.events("web_room.say") == []
    assert sender.transport == receiver.transport == transport


def test_count_users_in_pipe(browser: Browser, browser2: Browser, dev: int, query: Query) -> None:
    one = browser.open(dev_id=dev, subs="web_count")
    two = browser2.open(dev_id=dev, subs="web_count")
    wait_subscribed(query, "web_count", one.uuid, two.uuid)

    one.js("cometApi.count_users_in_pipe('web_count', function (e) {"
           " results.count = {data: e.data, user_in_pipe: e.data.user_in_pipe, server_info: e.server_info}; })")

    count = one.wait_for("results.count", what="the pipe_count answer")
    assert count["data"] == ["user_in_pipe", 2]
    assert count["user_in_pipe"] == 2
    assert count["server_info"]["pipe"] == "_answer_pipe_count"
    assert one.events("web_count") == []  # answers go to the callback, not to the channel's listeners


def test_get_pipe_log(browser: Browser, dev: int, query: Query) -> None:
    query("INSERT INTO pipes_settings (name, length) VALUES ('web_x', 10)")
    for n in range(3):
        query(f"INSERT INTO pipes_messages (name, event, message) VALUES ('web_x', 'line', '{{\"n\":{n}}}')")
    page = browser.open(dev_id=dev)
    page.wait_connected()

    page.js("cometApi.get_pipe_log('web_x', record('log'))")

    log = page.wait_events("log", 3)
    assert [e["data"] for e in log] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(e["server_info"]["history"] is True for e in log)
    assert all(e["server_info"]["pipe"] == "web_x" and e["server_info"]["event"] == "line" for e in log)


def test_track_channel_events_and_users(browser: Browser, browser2: Browser, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (9, 'hash9')")
    watcher = browser.open(dev_id=dev, subs="track_room.subscription,track_room.unsubscription")
    wait_subscribed(query, "track_room", watcher.uuid)

    member = browser2.open(dev_id=dev, user_id=9, user_key="hash9", subs="track_room")
    member_uuid = member.uuid
    [joined] = watcher.wait_events("track_room.subscription")
    assert joined["data"] == {"user_id": 9, "uuid": member_uuid}

    watcher.js("cometApi.getTrackPipeUsers('track_room', function (e) { results.users = e; })")
    users = watcher.wait_for("results.users", what="the track_pipe_users answer")
    assert sorted(users["data"], key=lambda u: u["user_id"]) == [
        {"user_id": 0, "uuid": watcher.uuid}, {"user_id": 9, "uuid": member_uuid}]

    member.reset()  # the member leaves the page
    [left] = watcher.wait_events("track_room.unsubscription")
    assert left["data"] == {"user_id": 9, "uuid": member_uuid}


def test_get_user_data(browser: Browser, dev: int, query: Query) -> None:
    query("INSERT INTO users_data (id, data) VALUES (21, '{\"name\":\"Ann\"}')")
    page = browser.open(dev_id=dev)
    page.wait_connected()

    page.js("cometApi.getUserData(21, function (e) { results.user = e; })")

    user = page.wait_for("results.user", what="the user_data answer")
    assert user["data"] == {"user_data": '{"name":"Ann"}', "user_id": 21}
    assert user["server_info"]["pipe"] == "_answer"
