"""Long-poll sessions: the same frames and commands as the WebSocket, over plain HTTP.

Protocol (documented in docs/longpoll.md; every body is text/plain, so a
cross-origin page needs no CORS preflight):

- ``POST /lp/connect`` with the WebSocket URL's parameter tail as body
  -> ``{"sid": ..., "cursor": 0}``; the session is authorized and online.
  With ``caps=hb`` the reply adds ``timeout`` (seconds a poll is held) and
  ``ttl`` (``session_ttl``), so the library can tell a dead network from a
  held poll and keeps retrying the same session until the TTL.
- ``GET /lp/poll?sid=S&cursor=N`` -> frames numbered above N, held until one
  exists or ``longpoll_timeout`` passes: ``{"cursor": M, "frames": [...]}``.
  Frames up to N are dropped only now, so a lost response is simply polled
  again with the old cursor: nothing is lost between two polls. With
  ``&wait=0`` the answer comes at once, even empty: the library's first poll
  after an outage, to learn quickly whether its session is still there.
- ``POST /lp/send?sid=S`` with one command as body -> 204.
- ``POST /lp/close?sid=S`` -> 204. Unknown or expired sid -> 404.

A session with no poll outstanding for ``session_ttl`` seconds is taken
offline through the same path as a closed WebSocket (``detach``: offline
event, ``users_time``, later personal messages queued). Until then a
browser that lost its network resumes it with its cursor and loses nothing.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs

import orjson
import trio

from ..hub import ConnInfo
from ._host import SessionHost
from ._http import HttpError, Request, Response
from ._params import ParamsError, parse_params
from ._relay import RELAYED, cluster_sid, relay, relay_path, relay_tcp, sid_address
from ._session import BrowserSession

__all__ = ["LongPoll"]

PREFIXES = ("/lp/", "/comet-server/lp/")
_NODE_ID = re.compile(r"[0-9a-f]{12}")  # what a session id may name as its owner (it becomes a file name)


def _json(status: int, obj: object) -> Response:
    return Response(status, orjson.dumps(obj))


class LongPoll:
    """The long-poll routes and the registry of live long-poll sessions."""

    def __init__(self, host: SessionHost) -> None:
        self.host = host
        self.sessions: dict[str, BrowserSession] = {}

    @staticmethod
    def route(path: str) -> str | None:
        for prefix in PREFIXES:
            if path.startswith(prefix):
                return path[len(prefix) :]
        return None

    async def handle(self, action: str, request: Request, info: ConnInfo) -> Response:
        if action == "connect" and request.method == "POST":
            return await self._connect(request, info)
        sid = parse_qs(request.query).get("sid", [""])[0]
        session = self.sessions.get(sid)
        if session is None:
            return await self._elsewhere(sid, request) or _json(404, {"error": "unknown session"})
        if action == "poll" and request.method == "GET":
            return await self._poll(sid, session, request)
        if action == "send" and request.method == "POST":
            await self.host.run_command(session, request.body.decode("utf-8", "replace"))
            return Response(204)
        if action == "close" and request.method == "POST":
            await self._drop(sid, session)
            return Response(204)
        raise HttpError(404, "no such long-poll action")

    async def _connect(self, request: Request, info: ConnInfo) -> Response:
        host = self.host
        if not host.origin_ok(info.origin or None):
            return _json(403, {"error": "Error code 423(Access denied, Request from unauthorized domain.)"})
        try:
            params = parse_params(request.body.decode("utf-8", "replace").strip(),
                                 dev_index_size=host.options.dev_index_size)
        except ParamsError as exc:
            return _json(400, {"error": exc.text, "error_code": exc.code})
        info.uuid = params.uuid
        session = BrowserSession(params.dev_id, info, transport="longpoll",
                                 max_queued_bytes=host.options.max_queued_bytes)
        if not host.admit(session, info.ip):
            return _json(429, {"error": "Error code 429(Too many sessions from this address.)", "error_code": 429})
        session.idle_since = trio.current_time()
        sid = secrets.token_urlsafe(18)
        options = host.options
        if options.advertise:  # which node holds it, and where it is reached (see _relay)
            sid = cluster_sid(options.node_id, sid, options.advertise, options.relay_secret)
        elif options.relay_dir is not None:
            sid = f"{options.node_id}.{sid}"  # which worker holds it (see _relay)
        self.sessions[sid] = session
        await host.attach(session, params)
        reply: dict[str, object] = {"cursor": 0, "sid": sid}
        if "hb" in params.caps:  # our library: how long a poll is held and how long the session outlives
            reply["timeout"] = host.options.longpoll_timeout  # a silent network, so it knows how long to retry
            reply["ttl"] = host.options.session_ttl
        return _json(200, reply)

    async def _elsewhere(self, sid: str, request: Request) -> Response | None:
        """A session of a sibling worker (``--workers``) or of another node (``[ws] advertise``): its owner
        answers. None: nobody here knows it (404)."""
        options = self.host.options
        owner = sid.split(".", 1)[0] if "." in sid else ""
        if not _NODE_ID.fullmatch(owner) or owner == options.node_id:
            return None
        timeout = options.longpoll_timeout + 10
        if options.relay_dir is not None:
            answer = await relay(relay_path(options.relay_dir, owner), request, timeout)
            if answer is not None:
                return answer
        if options.advertise and RELAYED not in request.headers:
            address = sid_address(sid, options.relay_secret)
            if address is not None:
                return await relay_tcp(address, request, timeout)
        return None

    async def _poll(self, sid: str, session: BrowserSession, request: Request) -> Response:
        query = parse_qs(request.query)
        try:
            cursor = int(query.get("cursor", ["0"])[0])
        except ValueError:
            return _json(400, {"error": "cursor must be an integer"})
        hold = query.get("wait", ["1"])[0] != "0"  # wait=0: answer at once (a resuming library's probe)
        session.ack(cursor)
        session.idle_since = None
        try:
            if hold and not session.pending() and session.closing is None:
                with trio.move_on_after(self.host.options.longpoll_timeout):
                    await session.wait()
        finally:
            session.idle_since = trio.current_time()
        pending = session.pending()
        last = pending[-1][0] if pending else cursor
        body = b'{"cursor":%d,"frames":[%b]' % (last, b",".join(f for _, f, _ in pending))
        if session.closing is not None:
            body += b',"closed":' + orjson.dumps(session.closing)
            await self._drop(sid, session)
        return Response(200, body + b"}")

    async def _drop(self, sid: str, session: BrowserSession) -> None:
        if self.sessions.pop(sid, None) is not None:
            await self.host.detach(session)

    async def reap(self) -> None:
        """Take sessions offline whose browser stopped polling."""
        ttl = self.host.options.session_ttl
        while True:
            await trio.sleep(min(5.0, ttl / 2))
            now = trio.current_time()
            for sid, session in list(self.sessions.items()):
                if session.idle_since is not None and now - session.idle_since > ttl:
                    await self._drop(sid, session)
