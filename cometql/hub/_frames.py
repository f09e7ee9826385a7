"""JSON frames pushed to browsers, encoded once per message.

CppComet writes JSON objects with sorted keys and no whitespace; we do the same
with orjson and additionally write ``'`` as ``\\u0027`` (the stock browser
library drops frames containing ``\\'``). A ``'`` can only occur inside a JSON
string, so a byte replacement after encoding is exact.

A message can take two forms: CppComet's frame, byte for byte, for sessions
without capabilities (CppComet's library), and the same object with added keys
(message ids; offsets later) for sessions that announced capabilities. Such a
message is a ``Frames``, which encodes each form at most once, on first use; a
message whose forms do not differ is plain ``bytes``.
"""

from __future__ import annotations

from typing import Any, final

import orjson

__all__ = ["KNOWN_CAPS", "NO_CAPS", "Frames", "channel_frames", "encode_frame", "pipe_frame", "position_frame",
           "queued_user_frame", "queued_user_frames", "recovered_frame", "status_frame", "user_frame", "user_frames"]

_OPTS = orjson.OPT_SORT_KEYS

#: The capabilities of a session that announced none (CppComet's library): it gets CppComet's frames.
NO_CAPS: frozenset[str] = frozenset()

#: Capabilities a browser may announce (``../shared/spec/README.md``, contract decisions):
#: ``ack`` acknowledges personal messages by id, ``offset`` recovers channels by offset and epoch,
#: ``hb`` exchanges heartbeats so the page sees a silent server. serverInfo lists the accepted ones.
KNOWN_CAPS: frozenset[str] = frozenset({"ack", "offset", "hb"})


def encode_frame(obj: dict[str, Any]) -> bytes:
    """Encode one frame as compact, key-sorted JSON bytes."""
    data = orjson.dumps(obj, option=_OPTS)
    if b"'" in data:
        data = data.replace(b"'", b"\\u0027")
    return data


@final
class Frames:
    """One message in the two forms sessions take, each encoded at most once, when first asked for.

    ``legacy`` is CppComet's frame (the object), for sessions without capabilities;
    ``capable`` is the object plus ``extra`` keys, for sessions with capabilities. One
    ``Frames`` serves one fan-out: a fan-out with no capable session never encodes
    ``capable``, and one with only capable sessions never encodes ``legacy``.
    """

    __slots__ = ("_obj", "_extra", "_legacy", "_capable")

    def __init__(self, obj: dict[str, Any], extra: dict[str, Any]) -> None:
        self._obj = obj
        self._extra = extra
        self._legacy: bytes | None = None
        self._capable: bytes | None = None

    @property
    def legacy(self) -> bytes:
        if self._legacy is None:
            self._legacy = encode_frame(self._obj)
        return self._legacy

    @property
    def capable(self) -> bytes:
        if self._capable is None:
            self._capable = encode_frame({**self._obj, **self._extra})
        return self._capable

    def form(self, caps: frozenset[str]) -> bytes:
        """The bytes for a session with these capabilities (any capability: the capable form)."""
        return self.capable if caps else self.legacy

    def __repr__(self) -> str:
        return f"Frames({self._obj!r}, extra={self._extra!r})"


def _pipe(channel: str, event: str, message: str, sent_at: int, user_id: int | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"data": message, "event": event, "message_send_time": sent_at, "pipe": channel}
    if user_id is not None:
        obj["user_id"] = user_id
    return obj


def pipe_frame(channel: str, event: str, message: str, sent_at: int, user_id: int | None = None) -> bytes:
    """The frame a channel publish produces (``user_id`` only for browser-sent messages)."""
    return encode_frame(_pipe(channel, event, message, sent_at, user_id))


def channel_frames(channel: str, event: str, message: str, sent_at: int, user_id: int | None,
                   epoch: str, offset: int) -> Frames:
    """``pipe_frame`` of a message kept in history, and for sessions with capabilities its place in the
    channel's stream too (``epoch``, ``offset``: what channel recovery asks after)."""
    return Frames(_pipe(channel, event, message, sent_at, user_id), {"epoch": epoch, "offset": offset})


def position_frame(event: str, channel: str, epoch: str, offset: int, history: bool, now: int,
                   marker: str | None = None, recovered: bool | None = None) -> bytes:
    """Where a channel's stream is (offset capability only): ``position`` after a subscription,
    ``recovery`` ending a ``pipe_log`` after an offset (``recovered`` false: a gap, nothing was sent)."""
    data: dict[str, Any] = {"epoch": epoch, "history": history, "offset": offset, "pipe": channel}
    if recovered is not None:
        data["recovered"] = recovered
    obj: dict[str, Any] = {"data": data, "event": event, "message_send_time": now, "pipe": "sys"}
    if marker is not None:
        obj["marker"] = marker
    return encode_frame(obj)


def user_frame(event: str, message: str) -> bytes:
    """A live ``users_messages`` delivery: pipe ``msg`` and no send time, as in CppComet."""
    return encode_frame({"data": message, "event": event, "pipe": "msg"})


def user_frames(event: str, message: str, message_id: str) -> Frames:
    """``user_frame``, and for sessions with capabilities the message's stable ``id`` too."""
    return Frames({"data": message, "event": event, "pipe": "msg"}, {"id": message_id})


def _queued_user(event: str, message: str, queued_at: int) -> dict[str, Any]:
    return {"data": message, "event": event, "fromQueue": True, "message_send_time": queued_at, "pipe": "msg"}


def queued_user_frame(event: str, message: str, queued_at: int) -> bytes:
    """A ``users_messages`` delivery from the offline queue."""
    return encode_frame(_queued_user(event, message, queued_at))


def queued_user_frames(event: str, message: str, queued_at: int, message_id: str) -> Frames:
    """``queued_user_frame``, and for sessions with capabilities the message's stable ``id`` too."""
    return Frames(_queued_user(event, message, queued_at), {"id": message_id})


def status_frame(user_id: int, status: str) -> bytes:
    """``online``/``offline`` on ``user_status_<id>`` (no send time, as in CppComet)."""
    return encode_frame({"data": status, "event": status, "pipe": f"user_status_{user_id}"})


def sys_frame(event: str, data: Any, now: int, **extra: Any) -> bytes:
    """A frame on the ``sys`` pipe (serverInfo, errors)."""
    return encode_frame({"data": data, "event": event, "message_send_time": now, "pipe": "sys", **extra})


def error_frame(error: str, now: int, **data: Any) -> bytes:
    """The error envelope every browser command uses: ``data`` carries ``error`` plus per-command keys."""
    return sys_frame("error", {"error": error, **data}, now)


def answer_frame(pipe: str, event: str, data: Any, now: int, marker: str | None = None, **extra: Any) -> bytes:
    """A reply to a browser request, routed by ``pipe`` (``_answer...``) and ``marker``."""
    obj: dict[str, Any] = {"data": data, "event": event, "message_send_time": now, "pipe": pipe, **extra}
    if marker is not None:
        obj["marker"] = marker
    return encode_frame(obj)


def _history(channel: str, event: str, message: str, sent_at: int, user_id: int) -> dict[str, Any]:
    return {"data": message, "event": event, "fromQueue": True, "history": True,
            "message_send_time": sent_at, "pipe": channel, "user_id": user_id}


def history_frame(channel: str, event: str, message: str, sent_at: int, user_id: int) -> bytes:
    """One ``pipe_log`` replay frame (``history`` is our addition; the stock client reads it)."""
    return encode_frame(_history(channel, event, message, sent_at, user_id))


def recovered_frame(channel: str, event: str, message: str, sent_at: int, user_id: int,
                    epoch: str, offset: int) -> bytes:
    """One message a ``pipe_log`` after an offset recovers: ``history_frame`` plus its place in the stream."""
    return encode_frame({**_history(channel, event, message, sent_at, user_id), "epoch": epoch, "offset": offset})


def track_frame(channel: str, event: str, user_id: int, uuid: str, now: int) -> bytes:
    """``subscription``/``unsubscription`` notice on a ``track_*`` channel."""
    return encode_frame(
        {"data": {"user_id": user_id, "uuid": uuid}, "event": event, "message_send_time": now, "pipe": channel}
    )
