"""Browser sessions and their commands, on top of the hub (still no I/O).

A browser sends text commands — a command word, ``\\n``, arguments separated
by ``\\n`` (CppComet's protocol) — over a WebSocket or a long-poll. This module
parses them and turns each into hub calls and effects; the transports only
move bytes. Replies go to the requesting session as ``Deliver`` effects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import _frames as frames
from ._effects import Deliver, Effect, Persist, Refused
from ._feeds import ACK
from ._hub import Hub
from ._names import CHANNEL_MAX, EVENT_MAX
from ._subscriber import Subscriber
from .records import SetAuth

__all__ = ["MAX_SUBSCRIPTIONS", "Login", "browser_login", "handle_command", "open_session"]

MAX_SUBSCRIPTIONS = 32  # CppComet's per-connection limit: the default of Hub(max_subscriptions=...)
_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9_\-]")  # one byte each: an empty token (\n\n) ends the list
_NAME = re.compile(r"[A-Za-z0-9_\-]+\Z")



@dataclass(frozen=True, slots=True)
class Login:
    """The hub's answer to a browser's login, decided before the session is linked to anyone.

    The transport gives its session ``user_id`` (0: anonymous) and then opens it with
    ``open_session``: the hub never changes a caller's object."""

    user_id: int
    #: What serverInfo reports (the stored or new hash, at most 32 characters; "" when anonymous).
    hash: str
    #: A first JWT login's ``SetAuth`` (in ``hub.state`` only once stored), applied before the greeting.
    effects: tuple[Effect, ...]


def browser_login(hub: Hub, dev_id: int, user_id: int, key: str, now: int) -> Login:
    """Authorize a browser's login (hash or JWT): an unauthorized one is anonymous."""
    ok, effects = hub.authorize(dev_id, user_id, key, now)
    if not ok:
        return Login(0, "", tuple(effects))
    new = [r.hash for e in effects if isinstance(e, Persist) for r in e.records if isinstance(r, SetAuth)]
    stored = new[0] if new else hub.state.auth_hash(dev_id, user_id)
    return Login(user_id, (stored or "")[:32], tuple(effects))


def open_session(hub: Hub, sub: Subscriber, login: Login, now: int, server: str, *,
                 heartbeat: Mapping[str, float] | None = None) -> list[Effect]:
    """Greet a new session with ``serverInfo``, then link it (queue, online event).

    ``sub.user_id`` is ``login``'s (``browser_login``), set by the transport that owns the session.
    ``heartbeat`` (for a session with the ``hb`` capability): the ping interval and timeout, so the
    page knows how long a silent server may stay silent before it counts as dead.
    """
    if sub.user_id != login.user_id:
        raise ValueError(f"session {sub.conn_id} has user id {sub.user_id}, its login decided {login.user_id}")
    hello_obj: dict[str, object] = {
        "authorized": login.user_id > 0, "data": login.hash, "event": "serverInfo",
        "message_send_time": now, "pipe": "sys", "server": server,
    }
    if sub.caps:  # only a session that announced capabilities sees the new key
        hello_obj["caps"] = sorted(sub.caps)
        if heartbeat is not None and "hb" in sub.caps:
            hello_obj["heartbeat"] = dict(heartbeat)
    hello = frames.encode_frame(hello_obj)
    return [*login.effects, Deliver((sub,), hello), *hub.connect(sub, now)]


def _reply(sub: Subscriber, frame: bytes) -> list[Effect]:
    return [Deliver((sub,), frame)]


def _error(sub: Subscriber, error: str, now: int, **data: object) -> list[Effect]:
    return _reply(sub, frames.error_frame(error, now, **data))


def _subscription(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    names: list[str] = []
    effects: list[Effect] = []
    for token in _TOKEN_SPLIT.split(args):
        if len(token) < 2:
            if token or names:
                break
            continue
        if len(token) > CHANNEL_MAX:
            effects += _error(sub, "Channel name is too long", now, code="403")
            continue
        if len(names) >= hub.max_subscriptions:
            effects += _error(sub, "Too many letters", now, code="403")
            effects.append(Refused("subscriptions"))
            break
        names.append(token)
    return effects + hub.subscribe(sub, names, now)


def _web_pipe(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    parts = args.split("\n", 3)
    if len(parts) < 4:
        return _error(sub, "Invalid value auth_type", now, number_messages=-1)
    pipe, event, auth_type, message = parts
    sender = sub.user_id
    if pipe.startswith("@web_"):
        pipe, sender = pipe[1:], 0
    elif pipe.startswith("webauth_"):
        if sub.user_id <= 0:
            return _error(sub, "[webauth_pipe_msg2] Invalid user auth. In to channel with name like webauth_* can "
                          "not send messages anonim users", now, number_messages=-1)
    elif not pipe.startswith("web_"):
        return _error(sub, "[pipe_msg2] Invalid channel name. The channel should begin with web_", now,
                      number_messages=-1)
    if not _NAME.match(pipe):
        return _error(sub, "The channel name can only contain characters A-Za-z0-9_-", now, number_messages=-1)
    if len(pipe) > CHANNEL_MAX:
        return _error(sub, "Invalid pipe name length", now, number_messages=-1)
    if event and not _NAME.match(event):
        return _error(sub, "The event name can only contain characters A-Za-z0-9_-", now, number_messages=-1)
    if len(event) > EVENT_MAX:
        return _error(sub, "Invalid event name length", now, number_messages=-1)
    if len(auth_type) != 1:
        return _error(sub, "Invalid value auth_type", now, number_messages=-1)
    # Relayed as sent (the product contract): CppComet MySQL-escaped it, which the stock
    # client undoes by itself; unescaped text decodes the same there and stays plain for others.
    delivered, effects = hub.web_publish(sub, pipe, event, message, sender, now)
    answer = {"message": message, "number_messages": delivered}
    report = frames.answer_frame(f"_answer_to_{pipe}", "answer", answer, now)
    return [*effects, Deliver((sub,), report)]


def _fields(args: str, count: int) -> list[str]:
    parts = [p.strip() for p in args.split("\n")]
    return (parts + [""] * count)[:count]


def _pipe_log(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    pipe, marker, epoch, offset = _fields(args, 4)
    if not _NAME.match(pipe):
        return _error(sub, "Invalid channel name.", now, number_messages=-1)
    if not _NAME.match(marker):
        return _error(sub, "Invalid marker value.", now, number_messages=-1)
    if offset and "offset" in sub.caps:
        return _recover(hub, sub, pipe, marker, epoch, offset, now)
    return [
        Deliver((sub,), frames.history_frame(pipe, e.event, e.message, e.time, e.user_id))
        for e in hub.state.history(sub.dev_id, pipe)
    ]


def _recover(hub: Hub, sub: Subscriber, pipe: str, marker: str, epoch: str, offset: str, now: int) -> list[Effect]:
    """``pipe_log`` after ``offset`` in ``epoch`` (offset capability): exactly the messages missed, each
    with its offset, then a ``recovery`` frame with the stream's position; or that frame alone with
    ``recovered`` false (a gap: another epoch, or older than the kept history)."""
    if not offset.isdigit() or len(offset) > 18 or (epoch and not _NAME.match(epoch)):
        return _error(sub, "Invalid offset or epoch.", now, number_messages=-1)
    state = hub.state
    position = state.position(sub.dev_id, pipe)
    history = position is not None or state.history_keep(sub.dev_id, pipe) > 0
    missed = state.history_after(sub.dev_id, pipe, epoch, int(offset))
    cur_epoch, last = position or ("", 0)
    effects: list[Effect] = [
        Deliver((sub,), frames.recovered_frame(pipe, e.event, e.message, e.time, e.user_id, cur_epoch, e.offset))
        for e in missed or ()
    ]
    end = frames.position_frame("recovery", pipe, cur_epoch, last, history, now, marker,
                                recovered=history and missed is not None)
    effects.append(Deliver((sub,), end))
    return effects


def _pipe_count(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    pipe, marker = _fields(args, 2)
    if not pipe.startswith(("web_", "track_")) or not _NAME.match(pipe):
        return _error(sub, "[pipe_count] Invalid channel name. The channel should start with web_", now,
                      number_messages=-1)
    count = hub.channel_count(sub.dev_id, pipe)
    return _reply(sub, frames.answer_frame("_answer_pipe_count", "user_in_pipe", ["user_in_pipe", count], now,
                                           marker or None))


def _track_pipe_users(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    pipe, marker = _fields(args, 2)
    if not pipe.startswith("track_") or not _NAME.match(pipe):
        return _error(sub, "[track_pipe_users] Invalid channel name. The channel should start with track_", now,
                      user_id=-1)
    users = [{"user_id": s.user_id, "uuid": s.info.uuid} for s in hub.channel_members(sub.dev_id, pipe)]
    return _reply(sub, frames.answer_frame("_answer", "answer", users, now, marker or None,
                                           _info="answer for track_pipe_users"))


def _user_data(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    marker, raw_id = _fields(args, 2)
    if not _NAME.match(marker):
        return _error(sub, "Invalid marker name.", now, user_data="", user_id=-1)
    if not raw_id.isdigit() or len(raw_id) > 18:
        return _error(sub, "Invalid user id", now, user_data="", user_id=-1)
    uid = int(raw_id)
    access = hub.user_data_access
    if access != "anyone" and (sub.user_id <= 0 or (access == "self" and uid != sub.user_id)):
        return _error(sub, "Access denied: user_data of this user is not readable from this session "
                      f"(user_data_access = {access})", now, user_data="", user_id=uid)
    data = hub.state.user_data(sub.dev_id, uid) or ""
    return _reply(sub, frames.answer_frame("_answer", "answer", {"user_data": data, "user_id": uid}, now, marker))


def _user_status(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    (raw_id,) = _fields(args, 1)
    if not raw_id.isdigit() or len(raw_id) > 18:
        return _error(sub, "Invalid user id", now, user_id=-1)
    uid = int(raw_id)
    ago = now - hub.user_time(sub.dev_id, uid)
    return _reply(sub, frames.answer_frame("_answer_user_status", f"user_status_{uid}",
                                           {"data": ago, "last_online_time": ago}, now))


_MAX_ACK_IDS = 1000


def _ack(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    """``ack\n<id>,<id>,...``: personal messages this session got (the ``id`` of their frames). Only a
    session that announced the ``ack`` capability may send it; unknown ids are ignored."""
    if ACK not in sub.caps:
        return _error(sub, "Unknown command", now, number_messages=-1)
    ids = [i for i in args.strip().split(",") if i][:_MAX_ACK_IDS]
    return hub.personal.ack(sub, ids)


def _ignored(hub: Hub, sub: Subscriber, args: str, now: int) -> list[Effect]:
    return []


Handler = Callable[[Hub, Subscriber, str, int], list[Effect]]

#: Matched by prefix in this order, as CppComet does.
COMMANDS: tuple[tuple[str, Handler], ...] = (
    ("subscription", _subscription),
    ("user_status", _user_status),
    ("pipe_count", _pipe_count),
    ("statistics", _ignored),
    ("web_pipe2", _web_pipe),
    ("pipe_log", _pipe_log),
    ("track_pipe_users", _track_pipe_users),
    ("user_data", _user_data),
    ("cgi_call", _ignored),
    ("CometQL_call", _ignored),
    ("ack", _ack),
)


def handle_command(hub: Hub, sub: Subscriber, text: str, now: int) -> list[Effect]:
    """Run one client command; an unknown one gets an error frame (the session stays open)."""
    for word, handler in COMMANDS:
        if text.startswith(word):
            return handler(hub, sub, text[len(word) + 1 :], now)
    return _error(sub, "Unknown command", now, number_messages=-1)

