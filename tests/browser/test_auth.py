"""Authorization as the page sees it: onAuthSuccess / onAuthFalill and isAuthorized()."""

from __future__ import annotations

import time

import jwt
import pytest

from ..servers import PASSWORD
from .helpers import Browser, Query


def test_users_auth_hash_authorizes(browser: Browser, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (11, 'hash11')")
    browser.open(dev_id=dev, user_id=11, user_key="hash11")
    browser.wait_for("results.auth.length > 0", what="an auth callback")
    assert browser.js("return results.auth") == [True]
    assert browser.js("return cometApi.isAuthorized()") is True
    assert browser.js("return cometApi.getUserId()") == "11"
    assert browser.js("return cometApi.getRealUserKey()") == "hash11"  # serverInfo.data: the stored hash


# The secret is fixed by the protocol (password + dev_id), short in tests.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_jwt_authorizes(browser: Browser, dev: int) -> None:
    token = jwt.encode({"user_id": 12, "exp": int(time.time()) + 300}, PASSWORD + str(dev), algorithm="HS256")
    browser.open(dev_id=dev, user_id=12, user_key=token)
    browser.wait_for("results.auth.length > 0", what="an auth callback")
    assert browser.js("return results.auth") == [True]
    assert browser.js("return cometApi.isAuthorized()") is True


def test_bad_hash_fails(browser: Browser, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (13, 'hash13')")
    browser.open(dev_id=dev, user_id=13, user_key="wrong")
    browser.wait_for("results.auth.length > 0", what="an auth callback")
    assert browser.js("return results.auth") == [False]
    assert browser.js("return cometApi.isAuthorized()") is False


def test_auth_status_is_undefined_before_connecting(browser: Browser) -> None:
    browser.open(nostart=1)
    assert browser.js("return cometApi.isAuthorized() === undefined") is True
    assert browser.js("return results.auth") == []


def test_restart_with_new_credentials(browser: Browser, dev: int, query: Query) -> None:
    query("INSERT INTO users_auth (id, hash) VALUES (14, 'hash14')")
    page = browser.open(dev_id=dev)
    assert page.wait_connected() is False

    page.js("cometApi.restart({user_id: 14, user_key: 'hash14'})")

    page.wait_for("cometApi.isAuthorized() === true", what="authorization after restart")
    assert page.js("return results.auth") == [False, True]
    assert page.js("return [cometApi.getUserId(), cometApi.getDevId()]") == [14, str(dev)]
