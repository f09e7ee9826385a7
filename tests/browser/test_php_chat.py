"""The PHP chat example (examples/php_chat) works end to end in real browsers.

`php -S` serves the example with its settings pointing at the test server and the
test's dev_id; two independent headless Chromium windows open the chat page (which
loads /cometql.js from the CometQL server), one types a message into the form and
clicks Send, send.php publishes it with mysqli, and both windows show it. The message
holds an apostrophe, a backslash and non-ASCII text: the characters that break naive
SQL quoting, JSON handling or encodings.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from ..servers import ServerProcess, free_port
from .helpers import TIMEOUT, Browser, Query, wait_subscribed

CHAT = Path(__file__).resolve().parents[2] / "examples" / "php_chat"
MESSAGE = "it's a \\ test: Grüße, ça va? 日本語 — ok"
TAGS = "<b>not bold</b> \\' \"quoted\""  # markup and an escaped-looking quote stay text


def wait_listening(host: str, port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"php -S exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"php -S did not listen on {host}:{port} within {TIMEOUT} s")


@pytest.fixture
def chat_url(server: ServerProcess, dev: int) -> Iterator[str]:
    """`php -S 127.0.0.1:PORT -t examples/php_chat` with the COMETQL_* settings of this test."""
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "COMETQL_HOST": server.host, "COMETQL_PORT": str(server.port), "COMETQL_PASSWORD": server.password,
        "COMETQL_DEV": str(dev), "COMETQL_NODE": f"{server.host}:{server.ws_port}",
    }
    proc = subprocess.Popen(["php", "-S", f"127.0.0.1:{port}", "-t", str(CHAT)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_listening("127.0.0.1", port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_chat(browser: Browser, url: str) -> Browser:
    """Load the chat page and wait until the library has its connection (the page says so)."""
    browser.driver.get(url)
    browser.wait_for("document.getElementById('status').textContent === 'connected'", what="chat connected")
    return browser


def shown_messages(browser: Browser, count: int) -> list[str]:
    """Wait for at least ``count`` lines in the page's message list; return their texts."""
    browser.wait_for(f"document.querySelectorAll('#messages p').length >= {count}",
                     what=f"{count} chat message(s) shown")
    return [p.text for p in browser.driver.find_elements(By.CSS_SELECTOR, "#messages p")]


def test_message_typed_in_one_window_shows_in_both(browser: Browser, browser2: Browser, chat_url: str,
                                                    query: Query) -> None:
    alice = open_chat(browser, chat_url)
    bob = open_chat(browser2, chat_url)
    wait_subscribed(query, "simplechat", alice.uuid, bob.uuid)

    alice.driver.find_element(By.ID, "name").send_keys("Zoë")
    alice.driver.find_element(By.ID, "text").send_keys(MESSAGE)
    alice.driver.find_element(By.ID, "send").click()

    expected = f"Zoë: {MESSAGE}"
    assert shown_messages(bob, 1) == [expected]
    assert shown_messages(alice, 1) == [expected]
    alice.wait_for("document.getElementById('status').textContent === 'sent'", what="send.php to answer ok")
    assert alice.js("return document.getElementById('text').value") == ""  # the form is ready for the next


def test_second_message_from_the_other_window(browser: Browser, browser2: Browser, chat_url: str,
                                              query: Query) -> None:
    alice = open_chat(browser, chat_url)
    bob = open_chat(browser2, chat_url)
    wait_subscribed(query, "simplechat", alice.uuid, bob.uuid)

    for count, (page, name, text) in enumerate(((alice, "Alice", "first"), (bob, "Bob", TAGS)), start=1):
        page.driver.find_element(By.ID, "name").send_keys(name)
        page.driver.find_element(By.ID, "text").send_keys(text)
        page.driver.find_element(By.ID, "send").click()
        shown_messages(alice, count)  # keep the order: the second is sent after the first arrived

    expected = ["Alice: first", f"Bob: {TAGS}"]
    assert shown_messages(alice, 2) == expected
    assert shown_messages(bob, 2) == expected
    assert len(bob.driver.find_elements(By.CSS_SELECTOR, "#messages b")) == 2  # only the names: text, not HTML
