"""The browser port: WebSocket, long-poll and a few plain HTTP routes on one listener.

A connection's first bytes are checked for a plain WebSocket upgrade on one of
CppComet's paths (parsed directly: the common case, kept cheap); anything else
is read with h11 and answered here (keep-alive, CORS on every reply). An
upgraded session leaves its task for the idle poller (``_wsconn.py``,
``_idle.py``), over TLS too (``_tls.py``). An upgrade on
``/admin/live`` is the dashboard's stats feed (``_adminlive.py``), served in
the connection's task and never a browser session. The front is the
``SessionHost`` of every transport: the limits, and bringing sessions into
and out of the hub.
"""

from __future__ import annotations

import errno
import logging
import math
import mimetypes
import socket as stdsocket
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import h11
import orjson
import trio

from .._version import __version__
from ..config import origin_allowed
from ..errors import StoreError
from ..hub import (
    ACK,
    ConnInfo,
    Deliver,
    Disconnect,
    Effect,
    Subscriber,
    browser_login,
    error_frame,
    handle_command,
    open_session,
)
from ..limits import FailedLogins, IpSessions, RateLimiter, Verdict, web_message_size
from ..listen import ACCEPT_RETRY, AcceptFailures, Admission, Ticket, open_listeners
from ..node import Node
from ..observe import EXPOSITION_CONTENT_TYPE
from ._admin import LIVE_PATH, REALM, admin_response, authorized, is_admin_path
from ._adminlive import serve_admin_live
from ._forwarded import client_address
from ._handshake import Handshaker
from ._http import HttpError, Request, Response, quick_upgrade, read_request, send_response
from ._idle import IdlePoller
from ._longpoll import LongPoll
from ._options import WebOptions
from ._params import ConnectParams, ws_tail
from ._pinger import Pingable, Pinger
from ._relay import open_relay_listener, relay_path
from ._session import Session
from ._tls import TlsStream, accept_tls_websocket
from ._wsconn import WsSession, accept_websocket

__all__ = ["WebFront"]

log = logging.getLogger("cometql.web")

#: accept() errors about one connection that went away while queued (as trio ignores them).
_ACCEPT_IGNORED = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})

STATIC = Path(__file__).parent / "static"
SERVER_NAME = f"CometQL {__version__}"
_LIBRARY = {"/cometql.js": "cometql.js", "/cometql.mjs": "cometql.mjs", "/CometServerApi.js": "cometql.js"}


class WebFront:
    """The browser port, and the ``SessionHost`` of its transports."""

    def __init__(self, node: Node, options: WebOptions) -> None:
        self.node = node
        self.engine = node.engine
        self.observer = node.observer
        self.options = options
        self.longpoll = LongPoll(self)
        self.idle = IdlePoller(self)
        self.handshakes = Handshaker(self)  # plain connections until their request arrives: no task each
        self.pinger = Pinger(options.ping_interval, options.ping_timeout, self._pingable, self.now)
        self._nursery: trio.Nursery | None = None
        self._listeners: list[trio.SocketListener] = []  # closed first on shutdown (``stop_accepting``)
        self.ip_sessions = IpSessions(options.max_sessions_per_ip)
        self._session_ip: dict[int, str] = {}
        self._limiters: dict[int, RateLimiter] = {}
        # wrong /admin and /metrics passwords, per client address
        self._guesses = FailedLogins(options.admin_login_attempts) if options.admin_login_attempts else None
        self.accept_failures = AcceptFailures(log, "browser")
        # WebSocket sessions in the idle poller hold a socket without a handler task: counted as ``extra``
        self.admission = Admission(log, "browser", max_open=options.max_connections,
                                   max_pending=options.max_handshakes, extra=lambda: len(self.idle))

    def now(self) -> int:
        return self.engine.now()

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Start a helper task (a session's send-backlog flusher) in the front's nursery."""
        assert self._nursery is not None
        self._nursery.start_soon(fn)

    def origin_ok(self, origin: str | None) -> bool:
        return origin_allowed(self.options.allowed_origins, origin)

    # ---------------------------------------------------------------- sessions

    def _pingable(self) -> Sequence[Pingable]:
        return self.idle.sessions()  # plain and TLS WebSocket sessions alike

    def heartbeat(self, session: Session, caps: frozenset[str]) -> dict[str, float] | None:
        """What serverInfo tells an ``hb`` WebSocket session about heartbeats (None: nothing)."""
        if "hb" not in caps or session.transport != "websocket" or self.options.ping_interval <= 0:
            return None
        return {"interval": self.options.ping_interval, "timeout": self.options.ping_timeout}

    def _open_effects(self, session: Session, params: ConnectParams) -> list[Effect]:
        """Log the session in (anonymous if refused) and decide its opening in the hub."""
        engine = self.engine
        session.caps = params.caps
        now = engine.now()
        login = browser_login(engine.hub, session.dev_id, params.user_id, params.key, now)
        session.user_id = login.user_id  # the hub's answer; the session is nobody's before ``open_session``
        return open_session(engine.hub, session, login, now, SERVER_NAME,
                            heartbeat=self.heartbeat(session, params.caps))

    async def attach(self, session: Session, params: ConnectParams) -> None:
        """Open the session in the hub, as the user its login was authorized as (anonymous if refused).
        If the store cannot take it (Redis gone, disk full), the session is taken out again and
        closed: no half-open session stays behind."""
        await self.opened(session, self._open_effects(session, params))

    def attach_nowait(self, session: Session, params: ConnectParams) -> list[Effect] | None:
        """``attach`` without awaiting when the opening needs no store (the common case on one node):
        None once open; else the effects still to apply with ``opened`` (in a task)."""
        effects = self._open_effects(session, params)
        return None if self.engine.apply_nowait(effects) else effects

    async def opened(self, session: Session, effects: list[Effect]) -> None:
        """Apply a session's opening (``attach``'s second half)."""
        try:
            await self.engine.apply(effects)
        except BaseException as exc:
            await self.detach(session)
            if isinstance(exc, StoreError):
                log.error("browser session refused, the store failed: %s", exc)
                session.close("the server's store is unavailable, try again")
                return
            raise

    def _leave(self, session: Session) -> list[Effect]:
        """Release what the front counted for the session; the hub's effects of its leaving."""
        ip = self._session_ip.pop(session.conn_id, None)
        if ip is not None:
            self.ip_sessions.release(ip)
        self._limiters.pop(session.conn_id, None)
        return self.engine.hub.disconnect(session, self.engine.now())

    async def detach(self, session: Session) -> None:
        with trio.CancelScope(shield=True):
            await self.finish_detach(session, self._leave(session))

    def detach_nowait(self, session: Session) -> list[Effect] | None:
        effects = self._leave(session)
        if not self.engine.apply_nowait(effects):
            return effects
        self.observer.session_left(session.transport, session.closing, session.dropped)
        return None

    async def finish_detach(self, session: Session, effects: list[Effect]) -> None:
        await self._finish_detach((session,), effects)

    async def detach_all(self, sessions: Sequence[Session]) -> None:
        """Server shutdown: every session leaves the hub (as one by one), and all in one ``apply``:
        the store writes every user's last-seen time in one transaction, not a commit each."""
        effects: list[Effect] = []
        for session in sessions:
            effects += self._leave(session)
        await self._finish_detach(sessions, effects)

    async def _finish_detach(self, sessions: Sequence[Session], effects: list[Effect]) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self.engine.apply(effects)
            except StoreError as exc:  # the sessions are gone from the hub all the same; only last-seen is lost
                log.error("could not store that %d session(s) left: %s", len(sessions), exc)
        for session in sessions:
            self.observer.session_left(session.transport, session.closing, session.dropped)

    # ------------------------------------------------------------------ limits

    def admit(self, session: Subscriber, ip: str) -> bool:
        """Count a new session against ``max_sessions_per_ip``; False if the address has too many."""
        if not self.ip_sessions.acquire(ip):
            self._limit_hit("sessions_per_ip")
            return False
        self._session_ip[session.conn_id] = ip
        return True

    def _command_effects(self, session: Subscriber, text: str) -> list[Effect]:
        """One browser command decided, after the rate and size limits (an error frame when one is hit)."""
        engine = self.engine
        options = self.options
        limiter = self._limiters.get(session.conn_id)
        if limiter is None:
            limiter = self._limiters[session.conn_id] = RateLimiter(options.command_rate, options.command_burst)
        # error frames go through the engine like every reply, so they keep their place in the session's order
        # acknowledgements are not rate-limited: the server's own sending paces them (a backlog's pages)
        verdict = Verdict.OK if _is_ack(session, text) else limiter.take(trio.current_time())
        if verdict is not Verdict.OK:
            self._limit_hit("command_rate")
            effects: list[Effect] = [Deliver((session,), error_frame("rate limit", engine.now(),
                                                                    number_messages=-1))]
            if verdict is Verdict.ABUSE:
                effects.append(Disconnect((session,), "rate limit: too many commands"))
            return effects
        if web_message_size(text) > options.max_message_size:
            self._limit_hit("message_size")
            return [Deliver((session,), error_frame(
                "Data is too long", engine.now(), number_messages=-1, max_message_size=options.max_message_size))]
        return handle_command(engine.hub, session, text, engine.now())

    async def run_command(self, session: Subscriber, text: str) -> None:
        """One browser command, after the rate and size limits (an error frame when one is hit)."""
        await self.apply_command(session, self._command_effects(session, text))

    def command_nowait(self, session: Subscriber, text: str) -> list[Effect] | None:
        effects = self._command_effects(session, text)
        return None if self.engine.apply_nowait(effects) else effects

    async def apply_command(self, session: Subscriber, effects: list[Effect]) -> None:
        engine = self.engine
        try:
            await engine.apply(effects)
        except StoreError as exc:  # one failed command: tell the page, keep the session and the server
            log.error("browser command failed, the store failed: %s", exc)
            await engine.apply([Deliver((session,), error_frame("store unavailable", engine.now(),
                                                                number_messages=-1))])

    def _limit_hit(self, limit: str) -> None:
        self.observer.limit_hit(limit)

    # ----------------------------------------------------------------- serving

    async def serve(
        self, *, task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        options = self.options
        listeners = await open_listeners(options.port, options.host, reuse_port=options.reuse_port)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.longpoll.reap)
            nursery.start_soon(self.idle.run)
            nursery.start_soon(self.handshakes.run)
            nursery.start_soon(self.pinger.run)
            for listener in listeners:
                nursery.start_soon(self._accept, listener, nursery)
            if options.relay_dir is not None:  # sibling workers pass long-poll requests for our sessions here
                path = relay_path(options.relay_dir, options.node_id)
                nursery.start_soon(self._relay_accept, await open_relay_listener(path), path, nursery)
            task_status.started(listeners)

    async def _relay_accept(self, listener: trio.SocketListener, path: Path, nursery: trio.Nursery) -> None:
        try:
            await self._accept(listener, nursery, tls=False)
        finally:
            path.unlink(missing_ok=True)

    def stop_accepting(self) -> None:
        """Shutdown: close the listeners, so a browser reconnecting is refused and backs off (not queued
        in a backlog nobody accepts from, to be reset at exit). Wakes the accept loops (ClosedResourceError)."""
        for listener in self._listeners:
            listener.socket.close()

    async def _accept(self, listener: trio.SocketListener, nursery: trio.Nursery, tls: bool = True) -> None:
        """Accept every pending connection per wake-up (trio's listener takes one per scheduler pass,
        which caps handshakes/s when browsers arrive in bursts). Without TLS a connection goes to the
        handshaker (``_handshake.py``: no task until it proves to need one); with TLS, or from the
        workers' relay, it gets its task at once. The listener is closed as soon as this ends."""
        self._listeners.append(listener)
        sock = listener.socket
        raw = sock._sock  # type: ignore[attr-defined]
        admission = self.admission
        quick = tls and self.options.tls is None
        if quick and raw.family in (stdsocket.AF_INET, stdsocket.AF_INET6):
            # accepted sockets inherit it (Linux): no setsockopt per connection, as trio's streams do
            raw.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
        try:
            while True:
                await admission.wait_room()
                await trio.lowlevel.wait_readable(sock)
                while not admission.full():
                    try:
                        conn, _ = raw.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:  # out of descriptors (logged once per burst), aborted connection
                        if exc.errno in _ACCEPT_IGNORED:
                            continue
                        self.accept_failures.fail(exc)
                        await trio.sleep(ACCEPT_RETRY)
                        break
                    self.accept_failures.ok()
                    conn.setblocking(False)
                    if quick:
                        self.handshakes.take(conn, admission.ticket())
                        continue
                    stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
                    nursery.start_soon(self.handle, stream, tls, admission.ticket())
        except trio.ClosedResourceError:  # ``stop_accepting``
            pass
        finally:
            sock.close()

    def adopt(self, session: WsSession) -> None:
        self.idle.add(session)

    async def handle(self, stream: trio.abc.Stream, tls: bool = True, ticket: Ticket | None = None,
                     first: bytes = b"") -> None:
        """Serve one connection in its task; ``first``: its first bytes, read already (by the handshaker)."""
        try:
            if self.options.tls is not None and tls:
                stream = secure = TlsStream.wrap(stream, self.options.tls)  # type: ignore[arg-type]
                with trio.fail_after(self.options.request_timeout):
                    await secure.do_handshake()
            session = await self._handle(stream, ticket, first)
            if session is not None:  # upgraded: the session lives on in the idle poller, on its own socket
                self.idle.add(session)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, h11.RemoteProtocolError):
            pass
        except Exception:  # one broken connection must not take the port down
            log.exception("browser connection failed")
        finally:
            if ticket is not None:
                ticket.close()  # an upgraded session now counts in the idle poller (``Admission.extra``)
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await stream.aclose()

    async def _upgrade(self, stream: trio.abc.Stream, request: Request,
                       info: ConnInfo) -> WsSession | None:
        if isinstance(stream, TlsStream):
            return await accept_tls_websocket(self, stream, request, info)
        return await accept_websocket(self, stream, request, info)  # type: ignore[arg-type]

    async def _handle(self, stream: trio.abc.Stream, ticket: Ticket | None = None,
                      first: bytes = b"") -> WsSession | None:
        """Serve HTTP requests; return the session if the connection became a WebSocket.

        The first request (its head and body) must arrive within ``request_timeout``: a silent or
        trickling connection costs a descriptor, and nothing is known of it yet. A request once read
        is served with its own time (a long-poll is held ``longpoll_timeout``); a kept-alive
        connection then waits for the next request as long as a browser's poll cycle may take.
        """
        if not first:
            with trio.move_on_after(self.options.request_timeout):
                first = bytes(await stream.receive_some(65536))
        if not first:  # nothing arrived in time, or the peer left
            return None
        if ticket is not None:
            ticket.settle()  # a request is arriving: no longer a handshake the port waits on
        quick = quick_upgrade(first)
        if quick is not None and ws_tail(quick.path) is not None:
            with trio.move_on_after(self.options.longpoll_timeout + 30):  # the handshake, and attach (the store)
                return await self._upgrade(stream, quick, self._info(stream, quick))
            return None
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        conn.receive_data(bytes(first))
        wait = self.options.request_timeout
        while True:
            origin = None
            try:
                with trio.fail_after(wait):
                    request = await read_request(conn, stream)
                wait = self.options.longpoll_timeout + 30
                if request is None:
                    return None
                origin = request.headers.get("origin")
                info = self._info(stream, request)
                if request.is_websocket and ws_tail(request.path) is not None:
                    return await self._upgrade(stream, request, info)
                if request.is_websocket and request.path == LIVE_PATH:
                    # the dashboard's feed: not a browser session
                    await serve_admin_live(self.node, self.options.admin_password, stream, request,
                                           ping=(self.options.ping_interval, self.options.ping_timeout))
                    return None
                response = await self.route(request, info)
            except HttpError as exc:
                response = Response(exc.status, orjson.dumps({"error": exc.message}))
            except trio.TooSlowError:
                return None
            if conn.our_state not in (h11.SEND_RESPONSE,):
                return None
            await send_response(conn, stream, response, origin, self.origin_ok(origin))
            if h11.MUST_CLOSE in (conn.our_state, conn.their_state):
                return None
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return None

    def _info(self, stream: trio.abc.Stream, request: Request) -> ConnInfo:
        try:
            peer = str(stream.socket.getpeername()[0])  # type: ignore[attr-defined]
        except (OSError, IndexError):  # IndexError: a Unix socket (the workers' relay) has no address
            peer = ""
        return self.conn_info(peer, request)

    def conn_info(self, peer: str, request: Request) -> ConnInfo:
        """What ``users_in_pipes`` shows of this request's browser; its address is the proxy's client when
        the peer (``peer``, the TCP peer's address) is a trusted proxy (``[ws] trusted_proxies``), else the peer's."""
        h = request.headers
        return ConnInfo(
            user_agent=h.get("user-agent", "")[:250],
            ip=client_address(peer, request.raw_headers, self.options.trusted_proxies),
            origin=h.get("origin", h.get("host", ""))[:250],
            language=h.get("accept-language", "")[:64],
        )

    async def route(self, request: Request, info: ConnInfo) -> Response:
        path = request.path
        if request.method == "OPTIONS":
            return Response(204)
        action = LongPoll.route(path)
        if action is not None:
            return await self.longpoll.handle(action, request, info)
        if request.method != "GET":
            raise HttpError(405, f"{request.method} is not served here")
        if path in ("/info", "/comet-server/info"):
            return Response(200, orjson.dumps({"node": SERVER_NAME, "status": "ok", "version": __version__}))
        if path in ("/health", "/comet-server/health"):
            return self._health()
        if path == "/metrics":
            if self.options.metrics_password and (refused := self._check_login(request, info,
                                                                                 self.options.metrics_password)):
                return refused
            return Response(200, self.observer.exposition(), EXPOSITION_CONTENT_TYPE)
        if is_admin_path(path):
            if refused := self._check_login(request, info, self.options.admin_password):
                return refused
            return admin_response(self.node, self.options.admin_password, request)
        if path in _LIBRARY:
            return Response(200, (STATIC / _LIBRARY[path]).read_bytes(), "application/javascript; charset=utf-8")
        if ws_tail(path) is not None:
            raise HttpError(426, "this path expects a WebSocket upgrade")
        return self._static(path)

    def _check_login(self, request: Request, info: ConnInfo, password: str) -> Response | None:
        """None if the request has HTTP Basic with ``password``; else the refusal: 401 for a wrong or missing
        one, 429 while the client's address has used up its guesses (``limits.FailedLogins``: 10, then one
        every 6 s; only wrong passwords count, a request without credentials is the browser asking)."""
        now = time.monotonic()
        guesses = self._guesses
        wait = guesses.blocked(info.ip, now) if guesses is not None else 0.0
        if wait:
            self._limit_hit("login_attempts")
            retry = str(math.ceil(wait))
            return Response(429, orjson.dumps({"error": f"too many failed logins; retry in {retry} s"}),
                            headers=[("Retry-After", retry)])
        if authorized(request, password):
            return None
        if "authorization" in request.headers and guesses is not None:
            guesses.failed(info.ip, now)
        return Response(401, b'{"error":"authentication required"}', headers=[("WWW-Authenticate", REALM)])

    def _health(self) -> Response:
        """200 while the delivery canary's probes go round (or it is off), 503 with the reason when not:
        for load balancers and monitors, which should take a failing node out."""
        report = self.node.canary.report()
        body: dict[str, object] = {"status": "ok" if report.healthy else "failing", "node": SERVER_NAME}
        if report.enabled:
            body.update(canary_seconds=report.seconds, probes=report.probes, failures=report.failures)
            if report.problem:
                body["problem"] = report.problem
        else:
            body["canary"] = "off"
        return Response(200 if report.healthy else 503, orjson.dumps(body), "application/json")

    def _static(self, path: str) -> Response:
        base_dir = self.options.base_dir
        if base_dir is not None:
            rel = path.removeprefix("/comet-server").lstrip("/") or "index.html"
            target = (base_dir / rel).resolve()
            if target.is_relative_to(base_dir) and target.is_file():
                ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                if ctype.startswith("text/") or ctype.endswith("javascript"):
                    ctype += "; charset=utf-8"
                return Response(200, target.read_bytes(), ctype)
        if path == "/":
            page = f"<!doctype html><title>CometQL</title><p>{SERVER_NAME} is running.</p>".encode()
            return Response(200, page, "text/html; charset=utf-8")
        raise HttpError(404, "not found")


def _is_ack(session: Subscriber, text: str) -> bool:
    return text.startswith("ack\n") and ACK in session.caps
