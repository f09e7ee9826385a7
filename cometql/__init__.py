"""CometQL: a comet (push) server driven by SQL over the MySQL wire protocol."""

from ._version import __version__
from .config import Config, load_config
from .hub import Hub
from .server import serve

__all__ = ["Config", "Hub", "__version__", "load_config", "serve"]
