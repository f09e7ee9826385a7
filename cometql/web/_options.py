"""The browser port's slice of the configuration, frozen when the front is built."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, trusted_networks
from ..listen import open_files_limit, port_budget
from ..tls import server_context
from ._forwarded import Network
from ._relay import relay_secret

__all__ = ["WebOptions"]


@dataclass(frozen=True, slots=True)
class WebOptions:
    host: str = "127.0.0.1"
    port: int = 8087
    dev_index_size: int = 100000
    allowed_origins: str = "*"
    base_dir: Path | None = None
    admin_password: str = ""
    #: Empty: /metrics is open.
    metrics_password: str = ""
    #: Wrong /admin and /metrics passwords per client address before it must wait (0: no limit).
    admin_login_attempts: int = 10
    longpoll_timeout: float = 25.0
    #: Seconds a new connection has for its TLS handshake and its first request.
    request_timeout: float = 10.0
    session_ttl: float = 60.0
    max_uptime: float = 0.0
    #: Seconds between pings to every WebSocket session (0: none), and how long one may stay silent after.
    ping_interval: float = 25.0
    ping_timeout: float = 10.0
    max_queued_bytes: int = 4 * 1024 * 1024
    max_sessions_per_ip: int = 0
    #: Connections at once (sockets: WebSocket sessions, requests in progress), and of them without a
    #: first request yet (``listen.Admission``).
    max_connections: int = 20000
    max_handshakes: int = 4096
    command_rate: float = 100.0
    command_burst: int = 200
    max_message_size: int = 1048576
    #: Reverse proxies whose X-Forwarded-For / X-Real-IP name the browser (``_forwarded.py``).
    trusted_proxies: tuple[Network, ...] = ()
    #: None: plain ws:// and http://.
    tls: ssl.SSLContext | None = None
    #: Share the port with sibling worker processes (``--workers``).
    reuse_port: bool = False
    #: With ``--workers`` on a cluster: this node's id, and where the workers' long-poll relay sockets live.
    node_id: str = ""
    relay_dir: Path | None = None
    #: Cluster: where other nodes reach this node's browser port (session ids carry it), and the key signing it.
    advertise: str = ""
    relay_secret: bytes = b""

    @classmethod
    def from_config(cls, config: Config, *, reuse_port: bool = False, node_id: str = "",
                    relay_dir: Path | None = None) -> WebOptions:
        return cls(
            host=config.ws_host,
            port=config.ws_port,
            dev_index_size=config.dev_index_size,
            allowed_origins=config.allowed_origins,
            base_dir=Path(config.base_dir).resolve() if config.base_dir else None,
            admin_password=config.effective_admin_password,
            metrics_password=config.metrics_password,
            admin_login_attempts=config.admin_login_attempts,
            longpoll_timeout=config.longpoll_timeout,
            request_timeout=config.request_timeout,
            session_ttl=config.session_ttl,
            max_uptime=config.max_uptime,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            max_queued_bytes=config.max_queued_bytes,
            max_sessions_per_ip=config.max_sessions_per_ip,
            max_connections=config.ws_max_connections or port_budget(open_files_limit()),
            max_handshakes=config.max_handshakes,
            command_rate=config.command_rate,
            command_burst=config.command_burst,
            max_message_size=config.max_message_size,
            trusted_proxies=trusted_networks(config.trusted_proxies),
            tls=server_context(config),
            reuse_port=reuse_port,
            node_id=node_id,
            relay_dir=relay_dir,
            advertise=config.advertise if node_id else "",
            relay_secret=relay_secret(config.password),
        )
