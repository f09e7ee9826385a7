"""The admin dashboard in headless Chromium: behind HTTP Basic, live numbers, a chart, a screenshot.

A second browser is the activity (an authorized user subscribed to a channel
through the stock library); the first opens /admin with the CometQL password
in the URL (Chromium turns it into an Authorization header and re-sends it for
the page's own /admin/token and /admin/stats requests). The page runs on the
/admin/live WebSocket; a test that makes that socket fail checks the fallback
to polling and the way back. Whether the page polled is read from the
browser's own resource timing. What the page shows is compared with
/admin/stats read directly, since other tests share this server.
"""

from __future__ import annotations

import struct
import time

from ..metrics_helpers import admin_stats
from ..servers import ServerProcess
from .helpers import Browser, Query, wait_until

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _admin_url(server: ServerProcess, password: str) -> str:
    return f"http://admin:{password}@{server.host}:{server.ws_port}/admin"


def _text(browser: Browser, element_id: str) -> str:
    return str(browser.js("return document.getElementById(arguments[0]).textContent", element_id))


def _polls(browser: Browser) -> int:
    """How many /admin/stats requests the page has made (the browser's resource timing, not the page's word)."""
    return int(browser.js("return performance.getEntriesByType('resource').filter(function (e) {"
                          "  return e.name.indexOf('/admin/stats') >= 0; }).length"))


def _sessions_card_follows(browser: Browser, server: ServerProcess) -> None:
    wait_until(lambda: _text(browser, "online-sessions") == str(admin_stats(server)["online"]["sessions"]),
               what="the sessions card to match /admin/stats")


# Run before the dashboard's script: while window.blockAdminLive is set, every WebSocket the page
# opens goes to a port where nothing listens, so it fails like an unreachable /admin/live.
BLOCK_LIVE = """
(function () {
  var Real = window.WebSocket;
  window.blockAdminLive = true;
  window.WebSocket = function (url, protocols) {
    return new Real(window.blockAdminLive ? "ws://127.0.0.1:9/admin/live" : url, protocols);
  };
})();
"""


def test_admin_page_without_the_password_is_refused(browser: Browser, server: ServerProcess) -> None:
    browser.driver.get(_admin_url(server, "not-the-password"))
    browser.wait_for("document.readyState === 'complete'")
    status = browser.js("var nav = performance.getEntriesByType('navigation')[0]; return nav && nav.responseStatus")
    assert status == 401
    assert browser.js("return document.getElementById('online-users')") is None  # the dashboard never rendered


def test_dashboard_shows_live_activity_and_a_chart(browser: Browser, browser2: Browser, server: ServerProcess,
                                                  dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (21, 'admin_hash21')")
    browser2.open(dev_id=dev, user_id=21, user_key="admin_hash21", subs="admin_dash_chan")
    assert browser2.wait_connected() is True
    query("INSERT INTO pipes_messages (name, event, message) VALUES ('admin_dash_chan', 'e', 'hello')")
    browser2.wait_events("admin_dash_chan")
    try:
        query("SELECT * FROM admin_dash_missing_table")
        raise AssertionError("a missing table must be an error")
    except Exception as exc:  # noqa: BLE001 - the error itself is the activity the dashboard must show
        assert "Table doesn't exist" in str(exc)

    browser.driver.get(_admin_url(server, server.password))
    browser.wait_for("document.getElementById('mode').textContent === 'live'", what="the live socket")
    browser.wait_for("document.getElementById('status').className.indexOf('ok') >= 0", what="a first update")

    def online_users_shown() -> bool:
        expected = admin_stats(server)["online"]["users"]
        return expected >= 1 and _text(browser, "online-users") == str(expected)

    wait_until(online_users_shown, what="the online-users card to match /admin/stats")
    channel_rows = browser.wait_for(
        "Array.prototype.map.call(document.querySelectorAll('#channels tbody tr'), function (tr) {"
        "  return Array.prototype.map.call(tr.cells, function (td) { return td.textContent; }); })"
        ".filter(function (r) { return r[1] === 'admin_dash_chan'; })",
        what="the channel in the busiest-channels table")
    assert channel_rows == [[str(dev), "admin_dash_chan", "1"]]
    errors = browser.wait_for("document.getElementById('errors').tBodies[0].textContent", what="recent errors")
    assert "Table doesn't exist" in errors
    points = browser.js("return document.querySelector('#chart polyline[data-series=users]').getAttribute('points')")
    assert points and len(points.split()) >= 2
    assert int(browser.js("return document.querySelectorAll('#chart text').length")) >= 5  # axis ticks

    # It keeps updating over the socket: a session leaving and a new one arriving elsewhere show up within
    # a few seconds, without reloading the page and without a single /admin/stats request.
    before = admin_stats(server)["online"]["sessions"]
    browser2.driver.get("about:blank")
    wait_until(lambda: admin_stats(server)["online"]["sessions"] < before, what="the second browser to leave")
    _sessions_card_follows(browser, server)
    left = int(_text(browser, "online-sessions"))
    assert left < before
    browser2.open(dev_id=dev, subs="admin_dash_second")
    browser2.wait_connected()
    wait_until(lambda: admin_stats(server)["online"]["sessions"] > left, what="the new session")
    _sessions_card_follows(browser, server)
    assert int(_text(browser, "online-sessions")) > left
    assert _text(browser, "mode") == "live"
    assert _polls(browser) == 0, "the page polled /admin/stats although its live socket was open"

    png = browser.driver.get_screenshot_as_png()
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width >= 800 and height >= 400, (width, height)
    assert len(png) > 20_000, f"a {len(png)}-byte screenshot is too small to show the dashboard"


def test_dashboard_falls_back_to_polling_and_goes_live_again(browser: Browser, server: ServerProcess) -> None:
    browser.before_load(BLOCK_LIVE)
    browser.driver.get(_admin_url(server, server.password))
    browser.wait_for("document.getElementById('mode').textContent === 'polling'", what="the polling indicator")
    browser.wait_for("document.getElementById('status').className.indexOf('ok') >= 0", what="a successful poll")
    assert _polls(browser) >= 1
    _sessions_card_follows(browser, server)  # the numbers still come, from /admin/stats
    polled = _polls(browser)
    wait_until(lambda: _polls(browser) > polled, what="polling to continue while the socket cannot open")

    browser.js("window.blockAdminLive = false")  # /admin/live reachable again: the retry with backoff finds it
    browser.wait_for("document.getElementById('mode').textContent === 'live'", timeout=15,
                     what="the page to reconnect its live socket")
    polled = _polls(browser)
    time.sleep(2.5)  # longer than the 2 s poll period
    assert _polls(browser) == polled, "the page kept polling after its live socket came back"
    shown = _text(browser, "uptime")
    wait_until(lambda: _text(browser, "uptime") != shown, what="the live socket to keep updating the page")
