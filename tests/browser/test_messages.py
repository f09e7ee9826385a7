"""Messages a backend sends with CometQL arrive in the browser, over WebSocket and long-poll."""

from __future__ import annotations

from .helpers import TRANSPORT_PARAMS, Browser, Query, wait_online, wait_subscribed, wait_until


def test_channel_message(browser: Browser, transport: str, dev: int, query: Query) -> None:
    browser.open(dev_id=dev, subs="news.update,news", **TRANSPORT_PARAMS[transport])
    assert browser.wait_connected() is False  # anonymous
    assert browser.transport == transport
    wait_subscribed(query, "news", browser.uuid)

    query("INSERT INTO pipes_messages (name, event, message) VALUES ('news', 'update', '{\"title\":\"CometQL\"}')")
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('news', 'other', 'it\\'s plain text')")

    [update] = browser.wait_events("news.update")
    assert update["data"] == {"title": "CometQL"}
    assert update["server_info"] == {"user_id": 0, "pipe": "news", "event": "update", "history": False,
                                     "fromQueue": False}
    both = browser.wait_events("news", 2)
    assert [e["data"] for e in both] == [{"title": "CometQL"}, "it's plain text"]
    assert [e["server_info"]["event"] for e in both] == ["update", "other"]
    assert len(browser.events("news.update")) == 1  # the event filter is applied locally


def test_user_message_while_online(browser: Browser, transport: str, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (7, 'secret7')")
    browser.open(dev_id=dev, user_id=7, user_key="secret7", subs="msg.notice,msg", **TRANSPORT_PARAMS[transport])
    assert browser.wait_connected() is True
    wait_online(query, 7)

    query("INSERT INTO users_messages (id, event, message) VALUES (7, 'notice', '{\"unread\":3}')")

    [notice] = browser.wait_events("msg.notice")
    assert notice["data"] == {"unread": 3}
    assert notice["server_info"]["pipe"] == "msg"
    assert notice["server_info"]["event"] == "notice"
    assert notice["server_info"]["fromQueue"] is False
    assert browser.wait_events("msg")[0]["data"] == {"unread": 3}


def test_user_message_queued_while_offline(browser: Browser, transport: str, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (8, 'secret8')")
    query("INSERT INTO users_messages (id, event, message) VALUES (8, 'notice', 'first')")
    query("INSERT INTO users_messages (id, event, message) VALUES (8, 'notice', '{\"n\":2}')")

    browser.open(dev_id=dev, user_id=8, user_key="secret8", subs="msg.notice", **TRANSPORT_PARAMS[transport])

    queued = browser.wait_events("msg.notice", 2)
    assert [e["data"] for e in queued] == ["first", {"n": 2}]
    assert all(e["server_info"]["fromQueue"] is True for e in queued)
    assert all(e["server_info"]["history"] is False for e in queued)
    assert browser.transport == transport
    wait_until_queue_empty(query, 8)


def wait_until_queue_empty(query: Query, user_id: int) -> None:
    """Delivered queue rows are dropped by the server."""
    wait_until(lambda: query(f"SELECT * FROM users_messages WHERE id = {user_id}") == [],
               what=f"user {user_id}'s queue to be emptied")


def test_unsubscription_and_subscription_once(browser: Browser, dev: int, query: Query) -> None:
    page = browser.open(dev_id=dev, subs="feed")
    page.js("results.onceId = cometApi.subscription_once('feed', record('once'));"
            "results.byId = cometApi.subscription('feed.ev', record('byId'));")
    wait_subscribed(query, "feed", page.uuid)
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('feed', 'ev', '1')")
    page.wait_events("feed")
    assert page.js("return cometApi.unsubscription(results.byId)") is True
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('feed', 'ev', '2')")
    assert [e["data"] for e in page.wait_events("feed", 2)] == [1, 2]
    assert [e["data"] for e in page.events("once")] == [1]
    assert [e["data"] for e in page.events("byId")] == [1]

    uuid = page.uuid
    page.js("cometApi.unsubscription('feed')")  # the last listener of the channel: the server drops it
    wait_until(lambda: (uuid,) not in query("SELECT user_uuid FROM users_in_pipes WHERE name = 'feed'"),
               what="the channel to be dropped on the server")


def test_a_personal_message_whose_ack_was_lost_comes_again_and_the_page_sees_it_once(
        browser: Browser, dev: int, query: Query) -> None:
    """Our library acknowledges personal messages by id; a message whose ack never reached the server
    is sent again on the next connection, and the library drops the repeat by its id."""
    query("INSERT INTO users_auth (id, hash) VALUES (31, 'secret31')")
    page = browser.open(dev_id=dev, user_id=31, user_key="secret31", subs="msg")
    assert page.wait_connected() is True
    wait_online(query, 31)
    # the ack is lost on the way: the batch is flushed as usual (timer and all), but nothing is sent
    page.js("cometApi.flushAcks = function () { clearTimeout(this.ackTimer); this.ackTimer = null; this.acks = []; };")
    query("INSERT INTO users_messages (id, event, message) VALUES (31, 'notice', 'once')")
    assert [e["data"] for e in page.wait_events("msg")] == ["once"]
    # the batch's timer has run (else the real flush below would send this ack after all)
    page.wait_for("cometApi.acks.length === 0 && cometApi.ackTimer === null", what="the lost ack's batch")
    assert [r[3] for r in query("SELECT * FROM users_messages WHERE id = 31")] == ["once"]  # not acknowledged

    page.js("delete cometApi.flushAcks;")  # acks get through again
    browser.set_offline(True)
    page.wait_for("!cometApi.isConnected()", what="the page to notice it is offline")
    browser.set_offline(False)
    page.wait_connected()
    wait_until(lambda: query("SELECT * FROM users_messages WHERE id = 31") == [], what="the repeat acknowledged")
    assert [e["data"] for e in page.events("msg")] == ["once"]  # the repeat was dropped by id
