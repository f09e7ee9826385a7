"""The library's own behaviour in Chromium: URL, uuid, decoding rules, and the ES module.

The decoding tests feed the frames CppComet sends (MySQL-escaped web_pipe
payloads, \\' in JSON), which our server never produces, so a page switching
back and forth between the two servers keeps working.
"""

from __future__ import annotations

import re

from .helpers import Browser, Query, wait_subscribed


def test_websocket_url_and_uuid(browser: Browser) -> None:
    browser.open(nostart=1)
    uuid = browser.uuid
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", uuid)
    assert browser.js("return localStorage.comet_server_uuid") == uuid
    url = browser.js("return CometServer.internals.webSocketUrl({dev_id: 5, user_id: 7, user_key: 'k7', "
                     "node: 'example.org:8087'}, cometApi.getUUID())")
    assert url == (f"ws://example.org:8087/ws/sesion=k7&myid=7&devid=5&v=4.08&uuid={uuid}&api=js"
                   "&caps=ack,offset,hb")
    assert browser.js("return CometServer() === window.cometApi")


def test_decodes_cppcomet_escaped_payloads(browser: Browser) -> None:
    browser.open(nostart=1)
    decode = "return CometServer.internals.decodeData(arguments[0])"
    # web_pipe2 payload JSON.stringify({text: "it's \"q\"\n"}) after mysql_real_escape_string
    assert browser.js(decode, r'{\"text\":\"it\'s \\\"q\\\"\\n\"}') == {"text": "it's \"q\"\n"}
    assert browser.js(decode, '{"a":[1,2]}') == {"a": [1, 2]}
    assert browser.js(decode, "plain text, it's") == "plain text, it's"
    assert browser.js(decode, r"C:\dir") == r"C:\dir"  # not JSON after unescaping either: unchanged
    frames = browser.js("return CometServer.internals.parseFrameText(arguments[0])",
                        '{"data":"a","pipe":"p1"}\n{"data":"it\\\'s","pipe":"p2"}\nnot json')
    assert frames == [{"data": "a", "pipe": "p1"}, {"data": "it's", "pipe": "p2"}]


def test_es_module_receives_channel_message(browser: Browser, dev: int, query: Query) -> None:
    browser.open("module.html", dev_id=dev, channel="modchan")
    assert browser.js("return results.same") is True
    wait_subscribed(query, "modchan", browser.uuid)
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('modchan', 'ev', '{\"n\":1}')")
    [event] = browser.wait_events("module")
    assert event["data"] == {"n": 1}
    assert event["server_info"]["pipe"] == "modchan"
