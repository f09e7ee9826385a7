"""Unit tests of the browser commands (cometql/hub/_browser.py) on a bare Hub.

The wire tests in tests/web check the frames end to end; these pin the
parsing rules and error texts of each command without sockets, so a failure
names the rule that broke.
"""

from __future__ import annotations

import itertools
import json

import jwt
import pytest

from cometql.hub import ConnInfo, Hub, ListSubscriber, Refused
from cometql.hub._browser import MAX_SUBSCRIPTIONS, browser_login, handle_command, open_session

from ._helpers import NOW, PASSWORD, apply, decoded, make_hub, open_as, queued, subscriptions

DEV = 3
_conn_ids = itertools.count(1)


def browser(hub: Hub, user_id: int = 0, key: str = "", uuid: str = "") -> ListSubscriber:
    """A session past open_session (its serverInfo frame removed)."""
    sub = ListSubscriber(next(_conn_ids), DEV, info=ConnInfo(uuid=uuid))
    apply(hub, open_as(hub, sub, user_id, key, NOW, "TestServer"))
    sub.frames.pop(0)
    return sub


def run(hub: Hub, sub: ListSubscriber, text: str) -> list[bytes]:
    """Run one command and return the frames it gave the requesting session."""
    before = len(sub.frames)
    apply(hub, handle_command(hub, sub, text, NOW))
    return sub.frames[before:]


def error(text: str, **data: object) -> bytes:
    body = json.dumps({"error": text, **data}, sort_keys=True, separators=(",", ":"))
    return b'{"data":%s,"event":"error","message_send_time":%d,"pipe":"sys"}' % (body.encode(), NOW)


# ------------------------------------------------------------------ sessions


def test_open_session_with_hash_greets_then_delivers_the_queue() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 7, "h7"))
    apply(hub, hub.send_to_user(DEV, 7, "ev", "queued", NOW - 5))
    sub = ListSubscriber(1, DEV)
    apply(hub, open_as(hub, sub, 7, "h7", NOW, "TestServer"))
    assert sub.user_id == 7
    assert sub.frames == [
        b'{"authorized":true,"data":"h7","event":"serverInfo","message_send_time":%d,"pipe":"sys",'
        b'"server":"TestServer"}' % NOW,
        b'{"data":"queued","event":"ev","fromQueue":true,"message_send_time":%d,"pipe":"msg"}' % (NOW - 5),
    ]
    assert queued(hub, DEV, 7) == []


@pytest.mark.parametrize(("user_id", "key"), [(7, "wrong"), (7, ""), (0, "h7"), (8, "h7")])
def test_open_session_unauthorized_is_anonymous(user_id: int, key: str) -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 7, "h7"))
    sub = ListSubscriber(1, DEV)
    apply(hub, open_as(hub, sub, user_id, key, NOW, "S"))
    assert sub.user_id == 0
    assert sub.frames == [b'{"authorized":false,"data":"","event":"serverInfo","message_send_time":%d,'
                          b'"pipe":"sys","server":"S"}' % NOW]
    assert hub.user_time(DEV, 7) == -1


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_open_session_with_jwt_stores_and_reports_a_hash() -> None:
    hub = make_hub()
    token = jwt.encode({"user_id": 9, "exp": NOW + 60}, f"{PASSWORD}{DEV}", algorithm="HS256")
    sub = ListSubscriber(1, DEV)
    records = apply(hub, open_as(hub, sub, 9, token, NOW, "S"))
    stored = hub.state.auth_hash(DEV, 9)
    assert stored is not None and len(stored) == 32 and records
    assert decoded(sub)[0]["data"] == stored and decoded(sub)[0]["authorized"] is True


def test_the_login_decides_the_user_and_the_hub_leaves_the_session_alone() -> None:
    """The hub answers a login without a session; ``open_session`` never changes the caller's object and
    refuses one whose user id is not the login's (a transport that forgot to take the hub's answer)."""
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 7, "h7"))
    assert (browser_login(hub, DEV, 7, "h7", NOW).user_id, browser_login(hub, DEV, 7, "wrong", NOW).user_id) == (7, 0)
    refused = browser_login(hub, DEV, 7, "wrong", NOW)
    sub = ListSubscriber(1, DEV, user_id=7)
    with pytest.raises(ValueError, match="login decided 0"):
        open_session(hub, sub, refused, NOW, "S")
    assert sub.user_id == 7 and sub.frames == [] and hub.user_time(DEV, 7) == -1


# -------------------------------------------------------------- subscription


@pytest.mark.parametrize(("args", "kept"), [
    ("web_a\nweb_b", ["web_a", "web_b"]),
    ("web_a web_b,web_c;web_d", ["web_a", "web_b", "web_c", "web_d"]),  # any non-name byte separates
    ("\nweb_a", ["web_a"]),  # leading empty tokens are skipped
    ("web_a\nx\nweb_b", ["web_a"]),  # a 1-char name ends the list
    ("web_a\n\nweb_b", ["web_a"]),  # so does an empty one
    ("web_a\nweb_a", ["web_a"]),
    ("", []),
])
def test_subscription_list_parsing(args: str, kept: list[str]) -> None:
    hub = make_hub()
    sub = browser(hub)
    assert run(hub, sub, "subscription\n" + args) == []
    assert subscriptions(hub, sub) == sorted(kept)


def test_subscription_keeps_32_and_reports_too_many() -> None:
    hub = make_hub()
    sub = browser(hub)
    names = [f"chan{i}" for i in range(40)]
    assert run(hub, sub, "subscription\n" + "\n".join(names)) == [error("Too many letters", code="403")]
    assert subscriptions(hub, sub) == sorted(names[:MAX_SUBSCRIPTIONS])
    assert sub.closed is None


def test_refused_subscriptions_are_reported_as_data() -> None:
    """The I/O layer counts the refusal from a ``Refused`` effect, not by reading the error frame."""
    hub = make_hub()
    sub = browser(hub)
    few = handle_command(hub, sub, "subscription\nchan1\nchan2", NOW)
    assert not [e for e in few if isinstance(e, Refused)]
    many = handle_command(hub, sub, "subscription\n" + "\n".join(f"c{i}" for i in range(40)), NOW)
    assert [e for e in many if isinstance(e, Refused)] == [Refused("subscriptions")]


def test_subscription_skips_a_too_long_name_with_an_error() -> None:
    hub = make_hub()
    sub = browser(hub)
    long = "x" * 65
    assert run(hub, sub, f"subscription\nweb_a\n{long}\nweb_b") == [error("Channel name is too long", code="403")]
    assert subscriptions(hub, sub) == ["web_a", "web_b"]


def test_subscription_private_needs_authorization() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 4, "k"))
    anon, user = browser(hub), browser(hub, 4, "k")
    run(hub, anon, "subscription\nprivate_a\nweb_b")
    run(hub, user, "subscription\nprivate_a\nweb_b")
    assert subscriptions(hub, anon) == ["web_b"]
    assert subscriptions(hub, user) == ["private_a", "web_b"]


# ------------------------------------------------------------------ web_pipe2


def test_web_pipe2_relays_unescaped_to_others_and_keeps_history() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 4, "k"))
    apply(hub, hub.set_pipe_settings(DEV, "web_h", 5))
    sender, other = browser(hub, 4, "k"), browser(hub)
    run(hub, sender, "subscription\nweb_h")
    run(hub, other, "subscription\nweb_h")
    report = run(hub, sender, "web_pipe2\nweb_h\nev\n*\nline1\nit's")
    assert report == [b'{"data":{"message":"line1\\nit\\u0027s","number_messages":1},"event":"answer",'
                      b'"message_send_time":%d,"pipe":"_answer_to_web_h"}' % NOW]
    assert decoded(other) == [{"data": "line1\nit's", "event": "ev", "message_send_time": NOW, "pipe": "web_h",
                               "user_id": 4}]
    assert [(e.message, e.user_id) for e in hub.state.history(DEV, "web_h")] == [("line1\nit's", 4)]


def test_web_pipe2_reports_how_many_other_sessions_it_reached() -> None:
    hub = make_hub()
    sender, a, b = browser(hub), browser(hub), browser(hub)

    def reached(command: str) -> int:
        (report,) = run(hub, sender, command)
        return int(json.loads(report)["data"]["number_messages"])

    assert reached("web_pipe2\nweb_room\nev\n*\n1") == 0  # nobody in the room
    run(hub, a, "subscription\nweb_room")
    run(hub, b, "subscription\nweb_room")
    assert reached("web_pipe2\nweb_room\nev\n*\n2") == 2  # the sender is not subscribed
    run(hub, sender, "subscription\nweb_room")
    assert reached("web_pipe2\nweb_room\nev\n*\n3") == 2  # subscribed, it is still not sent its own
    assert [m["data"] for m in decoded(a)] == ["2", "3"]  # relayed once each, the sender never got its own


def test_web_pipe2_at_web_hides_the_sender() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 4, "k"))
    sender, other = browser(hub, 4, "k"), browser(hub)
    run(hub, other, "subscription\nweb_h")
    run(hub, sender, "web_pipe2\n@web_h\nev\n*\nm")
    assert decoded(other)[0]["user_id"] == 0


@pytest.mark.parametrize(("command", "text"), [
    ("web_pipe2\nwebauth_x\nev\n*\nm", "[webauth_pipe_msg2] Invalid user auth. In to channel with name like "
                                       "webauth_* can not send messages anonim users"),
    ("web_pipe2\nnews\nev\n*\nm", "[pipe_msg2] Invalid channel name. The channel should begin with web_"),
    ("web_pipe2\nweb_a!\nev\n*\nm", "The channel name can only contain characters A-Za-z0-9_-"),
    ("web_pipe2\nweb_" + "a" * 61 + "\nev\n*\nm", "Invalid pipe name length"),
    ("web_pipe2\nweb_a\nev ent\n*\nm", "The event name can only contain characters A-Za-z0-9_-"),
    ("web_pipe2\nweb_a\n" + "e" * 65 + "\n*\nm", "Invalid event name length"),
    ("web_pipe2\nweb_a\nev\n**\nm", "Invalid value auth_type"),
    ("web_pipe2\nweb_a\nev", "Invalid value auth_type"),
], ids=["webauth-anonymous", "not-web", "pipe-chars", "pipe-length", "event-chars", "event-length",
        "auth-type", "missing-fields"])
def test_web_pipe2_errors(command: str, text: str) -> None:
    hub = make_hub()
    sub = browser(hub)
    assert run(hub, sub, command) == [error(text, number_messages=-1)]


# ------------------------------------------------------------- marker answers


def test_pipe_log_replays_any_channel_and_checks_its_fields() -> None:
    hub = make_hub()
    apply(hub, hub.set_pipe_settings(DEV, "plain", 2))
    for i in range(3):
        apply(hub, hub.publish(DEV, "plain", "e", f"m{i}", NOW + i))
    sub = browser(hub)
    frames = [json.loads(f) for f in run(hub, sub, "pipe_log\nplain\nmk\n")]
    assert [(f["data"], f["message_send_time"], f["fromQueue"], f["history"]) for f in frames] == [
        ("m1", NOW + 1, True, True), ("m2", NOW + 2, True, True)]
    assert run(hub, sub, "pipe_log\nbad name\nmk\n") == [error("Invalid channel name.", number_messages=-1)]
    assert run(hub, sub, "pipe_log\nplain\nm k\n") == [error("Invalid marker value.", number_messages=-1)]
    assert run(hub, sub, "pipe_log\nempty_chan\nmk\n") == []


def test_pipe_count_counts_web_and_track_channels_only() -> None:
    hub = make_hub()
    a, b = browser(hub), browser(hub)
    run(hub, a, "subscription\nweb_c\ntrack_c")
    run(hub, b, "subscription\nweb_c")
    assert run(hub, a, "pipe_count\nweb_c\nmk\n") == [
        b'{"data":["user_in_pipe",2],"event":"user_in_pipe","marker":"mk","message_send_time":%d,'
        b'"pipe":"_answer_pipe_count"}' % NOW]
    assert json.loads(run(hub, a, "pipe_count\ntrack_c\nmk\n")[0])["data"] == ["user_in_pipe", 1]
    assert run(hub, a, "pipe_count\nplain\nmk\n") == [
        error("[pipe_count] Invalid channel name. The channel should start with web_", number_messages=-1)]


def test_track_pipe_users_lists_members_with_uuid() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 4, "k"))
    a, b = browser(hub, 4, "k", uuid="ua"), browser(hub, uuid="ub")
    run(hub, a, "subscription\ntrack_t")
    run(hub, b, "subscription\ntrack_t")
    assert json.loads(run(hub, b, "track_pipe_users\ntrack_t\nmk")[0]) == {
        "_info": "answer for track_pipe_users", "data": [{"user_id": 4, "uuid": "ua"}, {"user_id": 0, "uuid": "ub"}],
        "event": "answer", "marker": "mk", "message_send_time": NOW, "pipe": "_answer"}
    assert run(hub, b, "track_pipe_users\nweb_t\nmk") == [
        error("[track_pipe_users] Invalid channel name. The channel should start with track_", user_id=-1)]


def test_track_events_go_to_the_other_members() -> None:
    hub = make_hub()
    a, b = browser(hub, uuid="ua"), browser(hub, uuid="ub")
    run(hub, a, "subscription\ntrack_t")
    run(hub, b, "subscription\ntrack_t")
    run(hub, b, "subscription\ntrack_t")
    apply(hub, hub.disconnect(b, NOW))
    assert [f["event"] for f in decoded(a)] == ["subscription", "unsubscription", "subscription", "unsubscription"]
    assert all(f["data"] == {"user_id": 0, "uuid": "ub"} for f in decoded(a))
    assert b.frames == []


def test_user_data_answers_and_errors() -> None:
    hub = make_hub()
    apply(hub, hub.set_user_data(DEV, 5, '{"n":1}'))
    sub = browser(hub)
    assert json.loads(run(hub, sub, "user_data\nmk\n5")[0])["data"] == {"user_data": '{"n":1}', "user_id": 5}
    assert json.loads(run(hub, sub, "user_data\nmk\n6")[0])["data"] == {"user_data": "", "user_id": 6}
    assert run(hub, sub, "user_data\nmk\nx") == [error("Invalid user id", user_data="", user_id=-1)]
    assert run(hub, sub, "user_data\nm k\n5") == [error("Invalid marker name.", user_data="", user_id=-1)]


def test_user_status_reports_seconds_since_online() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 5, "k"))
    sub = browser(hub)
    assert run(hub, sub, "user_status\n5") == [
        b'{"data":{"data":%d,"last_online_time":%d},"event":"user_status_5","message_send_time":%d,'
        b'"pipe":"_answer_user_status"}' % (NOW + 1, NOW + 1, NOW)]
    user = browser(hub, 5, "k")
    assert json.loads(run(hub, sub, "user_status\n5")[0])["data"]["data"] == NOW
    apply(hub, hub.disconnect(user, NOW - 30))
    assert json.loads(run(hub, sub, "user_status\n5")[0])["data"] == {"data": 30, "last_online_time": 30}
    assert run(hub, sub, "user_status\nfive") == [error("Invalid user id", user_id=-1)]


def test_online_event_has_no_send_time() -> None:
    hub = make_hub()
    apply(hub, hub.set_auth(DEV, 5, "k"))
    watcher = browser(hub)
    run(hub, watcher, "subscription\nuser_status_5")
    browser(hub, 5, "k")
    assert watcher.frames == [b'{"data":"online","event":"online","pipe":"user_status_5"}']


# -------------------------------------------------------------- other commands


@pytest.mark.parametrize("command", ["statistics\n{\"x\":1}", "cgi_call\nwhatever", "CometQL_call\nmk\ntoken"])
def test_silent_commands(command: str) -> None:
    hub = make_hub()
    sub = browser(hub)
    assert run(hub, sub, command) == []
    assert sub.closed is None


@pytest.mark.parametrize("command", ["hello", "", "Subscription\nweb_a", "\nsubscription"])
def test_unknown_command_is_an_error_frame_not_a_close(command: str) -> None:
    hub = make_hub()
    sub = browser(hub)
    assert run(hub, sub, command) == [error("Unknown command", number_messages=-1)]
    assert sub.closed is None
