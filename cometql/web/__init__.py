"""Browser face: WebSocket and long-poll sessions on trio, the served JS library, /admin and /metrics."""

from ._options import WebOptions
from ._server import WebFront
from ._session import BrowserSession

__all__ = ["BrowserSession", "WebFront", "WebOptions"]
