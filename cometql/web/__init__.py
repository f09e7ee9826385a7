"""Browser face: WebSocket and long-poll sessions on trio, the served JS library."""

from ._server import WebFront
from ._session import BrowserSession

__all__ = ["BrowserSession", "WebFront"]
