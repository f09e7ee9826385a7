"""The idle poller: one task watches every WebSocket session's socket.

Most browser sessions are idle most of the time. Instead of a task parked per
session (≈ 3.3 KB each: task, coroutine frames), all their sockets sit in one
private epoll set; one task waits on that set's descriptor and reads a session
that has bytes itself, without blocking: control frames (a ping's pong) are
answered right there. Commands and a session's end run right here too when
they need no store (``Engine.apply_nowait``: a subscription, an anonymous
session leaving, on one node); a short task starts only for those that must
await the store. Sockets are registered one-shot, so a session being served is
not reported again until it is re-armed.
"""

from __future__ import annotations

import select

import trio

from ..hub import Effect
from ..wsframes import close_frame
from ._host import SessionHost
from ._wsconn import WsSession
from ._wsprotocol import CLOSE_GOING_AWAY

__all__ = ["IdlePoller"]

_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT
#: The close reason every session is given on shutdown (with 1001: reconnect).
SHUTTING_DOWN = "server shutting down"


class IdlePoller:
    def __init__(self, host: SessionHost) -> None:
        self.host = host
        self._epoll = select.epoll()
        self._sessions: dict[int, WsSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[WsSession]:
        """A snapshot of every session (the pinger walks it)."""
        return list(self._sessions.values())

    def add(self, session: WsSession) -> None:
        fd = session.fileno()
        self._sessions[fd] = session
        self._epoll.register(fd, _EVENTS)

    def _rearm(self, session: WsSession) -> None:
        fd = session.fileno()
        if fd in self._sessions:
            self._epoll.modify(fd, _EVENTS)

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                if self.host.options.max_uptime > 0:
                    nursery.start_soon(self._expire, self.host.options.max_uptime)
                while True:
                    await trio.lowlevel.wait_readable(self._epoll.fileno())
                    for fd, _ in self._epoll.poll(0, 1024):
                        session = self._sessions.get(fd)
                        if session is not None:
                            self._read(nursery, fd, session)
        finally:
            with trio.CancelScope(shield=True):
                await self._close_all()

    async def _expire(self, max_uptime: float) -> None:
        """``[ws] maxUptime``: close connections older than the limit, cleanly (1001: reconnect)."""
        while True:
            await trio.sleep(min(10.0, max_uptime / 2))
            limit = trio.current_time() - max_uptime
            for session in list(self._sessions.values()):
                if session.opened_at < limit:
                    session.close("connection older than maxUptime", CLOSE_GOING_AWAY)

    def _read(self, nursery: trio.Nursery, fd: int, session: WsSession) -> None:
        """Read the session here, and run its commands and its end here when they need no store
        (a subscription, a session leaving on one node); a task only for what must await it."""
        messages = session.read()
        if messages:
            host = self.host
            for i, payload in enumerate(messages):
                effects = host.command_nowait(session, payload.decode())
                if effects is not None:  # the store is needed: this one and the rest in a task, in order
                    nursery.start_soon(self._serve, fd, session, effects, messages[i + 1:])
                    return
                if session.closing is not None:
                    break
        if messages is None or self._over(session):
            self._end_nowait(nursery, fd, session)
        else:
            self._rearm(session)

    @staticmethod
    def _over(session: WsSession) -> bool:
        """Closing with nothing left to send (with an outbox, its flusher shuts the socket when done)."""
        return session.closing is not None and not session.flushing

    async def _serve(self, fd: int, session: WsSession, effects: list[Effect], rest: list[bytes]) -> None:
        await self.host.apply_command(session, effects)
        for payload in rest:
            if session.closing is not None:
                break
            await self.host.run_command(session, payload.decode())
        if self._over(session):
            await self._end(fd, session)
        else:
            self._rearm(session)

    def _forget(self, fd: int, session: WsSession) -> bool:
        """Take the session out of the set and close its socket; False if it was already out."""
        if self._sessions.pop(fd, None) is None:
            return False
        session.release()  # closing the session's socket (its only descriptor) takes it out of the epoll set
        return True

    def _end_nowait(self, nursery: trio.Nursery, fd: int, session: WsSession) -> None:
        if self._forget(fd, session):
            effects = self.host.detach_nowait(session)
            if effects is not None:
                nursery.start_soon(self.host.finish_detach, session, effects)

    async def _end(self, fd: int, session: WsSession) -> None:
        if self._forget(fd, session):
            await self.host.detach(session)

    async def _close_all(self) -> None:
        """Server shutdown. The port stops accepting first: a browser reconnecting meanwhile is refused
        at once and backs off, rather than queued in a listener nobody serves (then reset). Then every
        browser is told to reconnect (1001, a non-blocking send) and its socket closed, in one pass
        without a task each; then they all leave the hub together (``detach_all``: one ``apply``, so
        the store writes every user's last-seen time in one transaction)."""
        self.host.stop_accepting()
        sessions = list(self._sessions.values())
        self._sessions.clear()
        frame = close_frame(CLOSE_GOING_AWAY, SHUTTING_DOWN)
        for session in sessions:
            session.goodbye(SHUTTING_DOWN, frame)  # closing its socket takes it out of the epoll set
        self._epoll.close()
        await self.host.detach_all(sessions)
