"""What a browser session's transport needs from the front that accepted it.

WebSocket (plain and TLS), long-poll and the idle poller depend on this small
protocol, not on ``WebFront``: they never reach back into the front's other
state, and the front's module can import them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ..hub import Effect, Subscriber
from ._options import WebOptions
from ._params import ConnectParams
from ._session import Session

__all__ = ["SessionHost"]


class SessionHost(Protocol):
    options: WebOptions

    def now(self) -> int:
        """Seconds since the epoch, as the hub counts them."""
        ...

    def origin_ok(self, origin: str | None) -> bool: ...

    def admit(self, session: Subscriber, ip: str) -> bool:
        """Count a new session against the per-address limit; False if the address has too many."""
        ...

    async def attach(self, session: Session, params: ConnectParams) -> None:
        """Bring the session online in the hub (closed at once if the store cannot take it)."""
        ...

    async def detach(self, session: Session) -> None:
        """Take the session out of the hub and release what the front counted for it."""
        ...

    async def detach_all(self, sessions: Sequence[Session]) -> None:
        """Server shutdown: take every session (closed already) out of the hub at once."""
        ...

    def stop_accepting(self) -> None:
        """Server shutdown: close the port's listeners (new connections are refused from now on)."""
        ...

    def detach_nowait(self, session: Session) -> list[Effect] | None:
        """``detach`` without awaiting when the store is not needed (None: done); else the effects
        still to apply, with ``finish_detach`` in a task."""
        ...

    async def finish_detach(self, session: Session, effects: list[Effect]) -> None:
        """The rest of a ``detach_nowait`` that returned effects."""
        ...

    async def run_command(self, session: Subscriber, text: str) -> None:
        """One browser command, after the rate and size limits."""
        ...

    def command_nowait(self, session: Subscriber, text: str) -> list[Effect] | None:
        """``run_command`` without awaiting when the store is not needed (None: done); else the
        command's effects (already decided by the hub), to apply with ``apply_command`` in a task."""
        ...

    async def apply_command(self, session: Subscriber, effects: list[Effect]) -> None:
        """Apply a command's effects (a store failure is told to the page, the session stays)."""
        ...

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Start a helper task (a send-backlog flusher) that lives as long as the port."""
        ...
