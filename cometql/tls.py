"""TLS for both ports, from two PEM files (``[ssl] cert`` and ``[ssl] key``).

One server-side ``ssl.SSLContext`` serves the browser port (wss://, https://)
and the MySQL port (the SSLRequest upgrade). Building it at start-up turns a
wrong path or a key that does not match into a ``ConfigError`` naming the
setting, so the server refuses to start instead of failing the first client.
It reads the two settings through ``TlsFiles`` and does not import
``cometql.config`` (which imports this module to check the files at start-up).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol

from .errors import ConfigError

__all__ = ["TlsFiles", "server_context"]


class TlsFiles(Protocol):
    """The two settings TLS needs (``Config`` has them): PEM file paths, empty when unset."""

    @property
    def tls_cert(self) -> str: ...

    @property
    def tls_key(self) -> str: ...


def server_context(config: TlsFiles) -> ssl.SSLContext | None:
    """The context for accepted connections, or None when TLS is not configured."""
    if not config.tls_cert and not config.tls_key:
        return None
    if not config.tls_cert or not config.tls_key:
        missing = "tls_cert" if not config.tls_cert else "tls_key"
        raise ConfigError(f"{missing}: TLS needs both tls_cert and tls_key ([ssl] cert and key)")
    for name, value in (("tls_cert", config.tls_cert), ("tls_key", config.tls_key)):
        path = Path(value)
        if not path.is_file():
            raise ConfigError(f"{name}: {path} is not a readable file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # a TLS 1.2 client asking to renegotiate would make a session's non-blocking write want a read
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as exc:
        raise ConfigError(f"tls_cert/tls_key: cannot load {config.tls_cert} with {config.tls_key}: "
                          f"{exc.reason or exc}") from None
    except OSError as exc:
        raise ConfigError(f"tls_cert/tls_key: cannot read {exc.filename}: {exc.strerror}") from None
    return context
