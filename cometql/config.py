"""Settings: defaults, then a comet.ini file, then COMETQL_* variables, then flags.

``comet.ini`` files written for CppComet load unchanged: ``[main] password``,
``[cometql] ip/port``, ``[ws] ip/port``, ... Values end at the first ``;`` or
``#`` (CppComet's rule) and unknown keys are reported as warnings, not errors.
Each setting remembers where its value came from, for ``--help`` and for
diagnostics.
"""

from __future__ import annotations

import configparser
import dataclasses
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .redisurl import RedisAddress
from .tls import server_context

__all__ = ["EXAMPLE_PASSWORD", "SETTINGS", "Config", "Setting", "load_config", "trusted_networks"]

#: The password in the sample comet.ini; refused on a public address.
EXAMPLE_PASSWORD = "CometQLPassword"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    ini: tuple[str, str] | None  # (section, key)
    help: str

    @property
    def env(self) -> str:
        return "COMETQL_" + self.name.upper()

    @property
    def default(self) -> Any:
        """Defaults live on ``Config`` only, so there is one place to change them."""
        return Config.__dataclass_fields__[self.name].default


SETTINGS: tuple[Setting, ...] = (
    Setting("password", str, ("main", "password"),
            "CometQL password for every login name (also the JWT secret prefix)"),
    Setting("admin_password", str, ("admin", "password"),
            "password of /admin, /admin/stats and /admin/token (HTTP Basic, any user name); "
            "empty: the CometQL password"),
    Setting("admin_login_attempts", int, ("admin", "login_attempts"),
            "wrong /admin or /metrics passwords one client address may send before it must wait (then one more "
            "every 6 s; 429 with Retry-After meanwhile); 0: no limit"),
    Setting("metrics_password", str, ("admin", "metrics_password"),
            "empty: GET /metrics needs no login (keep the port private); else HTTP Basic with this password "
            "(any user name), as Prometheus' basic_auth sends it"),
    Setting("mysql_host", str, ("cometql", "ip"), "address the MySQL-protocol port binds to"),
    Setting("mysql_port", int, ("cometql", "port"), "CometQL (MySQL protocol) port"),
    Setting("ws_host", str, ("ws", "ip"), "address the HTTP/WebSocket port binds to"),
    Setting("ws_port", int, ("ws", "port"), "HTTP/WebSocket port for browsers"),
    Setting("data_dir", str, ("main", "data_dir"), "directory of the SQLite store"),
    Setting("store", str, ("store", "url"),
            "empty: the embedded SQLite store under data_dir; redis://[:password@]host:port/db: Redis, "
            "shared by every node of a cluster"),
    Setting("workers", int, ("main", "workers"),
            "server processes on this machine sharing both ports (SO_REUSEPORT); more than 1 needs a Redis store"),
    Setting("node_timeout", float, ("store", "node_timeout"),
            "seconds without a heartbeat before a cluster node counts as dead and its sessions leave presence"),
    Setting("canary_interval", float, ("main", "canary_interval"),
            "seconds between delivery canary probes (a write through the store, in a cluster read back from the "
            "Redis bus, then through the delivery queue); /health and cometql_canary_ok report them. 0: off"),
    Setting("canary_timeout", float, ("main", "canary_timeout"),
            "seconds a canary probe may take before /health reports the node failing"),
    Setting("durability", str, ("store", "durability"),
            "'normal' survives a killed process; 'full' also a power cut (fsync per commit)"),
    Setting("dev_index_size", int, ("main", "dev_index_size"), "dev_id must be below this"),
    Setting("pin_dev", bool, ("cometql", "pin_dev"),
            "true: a MySQL connection acts only for its login's dev (USE db_N of another dev: ERR 1044); "
            "false: any login may act for any dev with USE db_N, as in CppComet. The password is shared by "
            "all devs either way, so this guards against mistakes, not against someone who has it"),
    Setting("login_timeout", float, ("cometql", "login_timeout"),
            "seconds a MySQL client has from connecting to being logged in (TLS included); a slower or "
            "silent one is disconnected. Until the login, a packet over 64 KiB ends the connection"),
    Setting("mysql_max_connections", int, ("cometql", "max_connections"),
            "MySQL connections at once; 0: the open-files limit less a reserve for browsers (min(512, limit/16)) "
            "and 64 for the server itself. At the bound new connections wait in the kernel's backlog"),
    Setting("max_unauthenticated", int, ("cometql", "max_unauthenticated"),
            "MySQL connections at once that have not logged in yet (each is closed after login_timeout); at the "
            "bound new connections wait in the kernel's backlog, logged-in ones are unaffected"),
    Setting("max_query_size", int, ("cometql", "max_query_size"),
            "longest accepted statement in bytes (longer: ERR 11 'Data is too long')"),
    Setting("max_statements", int, ("cometql", "max_statements"),
            "statements one query may hold (multi-statements; more: ERR 22)"),
    Setting("max_insert_rows", int, ("cometql", "max_insert_rows"), "rows one INSERT may hold (more: ERR 19)"),
    Setting("max_in_values", int, ("cometql", "max_in_values"), "values one IN (...) list may hold (more: ERR 19)"),
    Setting("send_user_online_events", bool, ("main", "send_user_online_events"),
            "publish 'online' on user_status_<id>"),
    Setting("send_user_offline_events", bool, ("main", "send_user_offline_events"),
            "publish 'offline' on user_status_<id>"),
    Setting("base_dir", str, ("main", "base_dir"), "if set, the browser port also serves static files from here"),
    Setting("allowed_origins", str, ("ws", "host"),
            "Origin hosts allowed to open browser sessions, separated by commas or spaces; * allows all"),
    Setting("longpoll_timeout", float, ("ws", "longpoll_timeout"), "seconds a long-poll request is held"),
    Setting("request_timeout", float, ("ws", "request_timeout"),
            "seconds a new browser connection has for its TLS handshake and its first request (headers and "
            "body); a silent or slower one is closed. A long-poll request already received is held for "
            "longpoll_timeout"),
    Setting("session_ttl", float, ("ws", "session_ttl"),
            "seconds a long-poll session survives without a poll before it counts as gone"),
    Setting("ping_interval", float, ("ws", "ping_interval"),
            "seconds between the WebSocket pings the server sends every browser session (sessions that "
            "announced the hb capability also get a heartbeat frame); 0: no pings"),
    Setting("ping_timeout", float, ("ws", "ping_timeout"),
            "seconds a WebSocket session may stay silent after a ping before it is closed as dead (the user "
            "goes offline, new personal messages are queued): a dead peer is noticed within "
            "ping_interval + ping_timeout"),
    Setting("advertise", str, ("ws", "advertise"),
            "cluster: host:port at which the other nodes reach this node's browser port (plain HTTP); set on "
            "every node, any node then serves any long-poll request (relayed to the session's node), so a "
            "round-robin balancer will do. Empty: long-poll needs a sticky balancer across machines"),
    Setting("max_uptime", float, ("ws", "maxUptime"),
            "close browser connections older than this many seconds (they reconnect); 0 = never"),
    Setting("max_queued_bytes", int, ("ws", "max_queued_bytes"),
            "send-queue bound per browser session; a slower consumer is disconnected"),
    Setting("log_level", str, ("log", "level"), "debug, info, warning or error"),
    Setting("log_format", str, ("log", "format"), "'text' (one human-readable line per event) or 'json'"),
    Setting("tls_cert", str, ("ssl", "cert"),
            "PEM certificate (chain) file; with tls_key, both ports speak TLS (wss://, https://, MySQL SSL)"),
    Setting("tls_key", str, ("ssl", "key"), "PEM private key file for tls_cert"),
    Setting("ws_max_connections", int, ("ws", "max_connections"),
            "browser connections at once (WebSocket sessions and HTTP requests); 0: the open-files limit less a "
            "reserve for MySQL logins (min(512, limit/16)) and 64 for the server itself"),
    Setting("max_handshakes", int, ("ws", "max_handshakes"),
            "browser connections at once that have not sent their first request yet (each is closed after "
            "request_timeout); at the bound new connections wait in the kernel's backlog"),
    Setting("max_sessions_per_ip", int, ("ws", "max_sessions_per_ip"),
            "browser sessions one IP address may hold open (0: no limit)"),
    Setting("command_rate", float, ("ws", "command_rate"),
            "browser commands per second a session may send on average (0: no limit)"),
    Setting("command_burst", int, ("ws", "command_burst"), "browser commands a session may send in a burst"),
    Setting("max_message_size", int, ("main", "max_message_size"),
            "longest message in bytes, from a browser (web_pipe2) or an INSERT (longer: ERR 11 'Data is too long')"),
    Setting("user_data_access", str, ("ws", "user_data_access"),
            "who may read users_data with the browser library's user_data(): 'anyone' (CppComet: anonymous "
            "pages too, so users_data must hold nothing private), 'users' (logged-in sessions) or 'self' "
            "(a user reads only their own)"),
    Setting("max_subscriptions", int, ("ws", "max_subscriptions"), "channels one browser session may subscribe to"),
    Setting("trusted_proxies", str, ("ws", "trusted_proxies"),
            "addresses or networks (CIDR) of reverse proxies, separated by commas or spaces: only a connection from "
            "one of them is believed about the browser's address (X-Forwarded-For, else X-Real-IP), for the "
            "per-IP limit, users_in_pipes and logs. Empty: every header is ignored and the TCP peer is the browser"),
    Setting("stats_interval", int, ("stats", "interval"),
            "seconds between two samples of the stats_history table (sessions, users and messages per channel "
            "and in total); 0: no sampling"),
    Setting("stats_keep_days", float, ("stats", "keep_days"),
            "days of stats_history kept in the store (older rows are dropped); 0: keep every row"),
    Setting("stats_channels", int, ("stats", "channels"),
            "channels per dev_id and sample in stats_history, the busiest (most subscribers) first, "
            "besides the totals row"),
    Setting("queue_max_messages", int, ("queue", "max_messages"),
            "personal messages (users_messages) one user's queue holds until delivered; further INSERTs get "
            "ERR 429 'Queue is full'"),
    Setting("queue_max_bytes", int, ("queue", "max_bytes"),
            "bytes of message text one user's queue holds until delivered (further INSERTs: ERR 429)"),
    Setting("queue_ttl", int, ("queue", "ttl"),
            "seconds a personal message may wait in its user's queue; older ones are deleted unsent (0: no limit)"),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_BY_INI = {s.ini: s for s in SETTINGS if s.ini}
#: Keys CppComet knows that we accept silently (they have no effect here).
_KNOWN_IGNORED = {
    ("main", k) for k in ("node_name", "useQueryLoger", "save_users_last_online_time", "buf_size", "answer_buf_size",
                          "fragment_buf_size", "fragment_buf_max_size", "pidfile", "api_version", "base_dir", "isTest")
} | {
    (sec, k) for sec in ("ws", "cometql") for k in ("thread_num", "statistics", "benchmark", "backlog", "epoll_size",
                                                    "uptimeTestInterval", "cluster")
}
_KNOWN_SECTIONS = {"main", "ws", "cometql", "store", "log", "ssl", "admin", "stats", "queue"}
_IGNORED_SECTIONS = {"db", "cometqlproxy", "freeswitch", "statistics", "content-type", "sip", "http"}


@dataclass(frozen=True)
class Config:
    password: str = EXAMPLE_PASSWORD
    admin_password: str = ""  # empty: /admin takes the CometQL password
    metrics_password: str = ""  # empty: /metrics is open, as before
    admin_login_attempts: int = 10
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3300
    ws_host: str = "127.0.0.1"
    ws_port: int = 8087
    data_dir: str = "data"
    store: str = ""
    workers: int = 1
    node_timeout: float = 6.0
    durability: str = "normal"
    canary_interval: float = 5.0
    canary_timeout: float = 5.0
    dev_index_size: int = 100000
    pin_dev: bool = False  # CppComet's model: one password, any login may USE db_N
    login_timeout: float = 10.0
    mysql_max_connections: int = 0
    max_unauthenticated: int = 256
    max_query_size: int = 1048576
    # far above PHP multi_query batches, 1,000-row INSERTs and 1,000-id IN lists; each is worked in slices
    max_statements: int = 1000
    max_insert_rows: int = 10000
    max_in_values: int = 10000
    send_user_online_events: bool = True
    send_user_offline_events: bool = True
    base_dir: str = ""
    allowed_origins: str = "*"
    longpoll_timeout: float = 25.0
    request_timeout: float = 10.0
    session_ttl: float = 60.0
    # a dead peer (mobile network gone) is noticed within 35 s; below most NAT and proxy idle timeouts
    ping_interval: float = 25.0
    ping_timeout: float = 10.0
    advertise: str = ""
    max_uptime: float = 0.0
    max_queued_bytes: int = 4 * 1024 * 1024
    log_level: str = "info"
    log_format: str = "text"
    tls_cert: str = ""
    tls_key: str = ""
    # off: behind nginx or a corporate NAT thousands of users share one address
    ws_max_connections: int = 0
    max_handshakes: int = 4096
    max_sessions_per_ip: int = 0
    # a page sends a few commands a second; a flood is slowed, then closed (CppComet had no limit)
    command_rate: float = 100.0
    command_burst: int = 200
    max_message_size: int = 1048576  # as max_query_size: a browser's frame is capped at 65535 anyway
    user_data_access: str = "anyone"
    max_subscriptions: int = 32
    trusted_proxies: str = ""  # nginx on the same machine: 127.0.0.1, ::1
    stats_interval: int = 60
    stats_keep_days: float = 7.0
    stats_channels: int = 20
    queue_max_messages: int = 10_000
    queue_max_bytes: int = 10 * 1024 * 1024
    queue_ttl: int = 0  # off: a message is never dropped unsent unless the backend asks for it
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def store_display(self) -> str:
        """The store url without its password, for banners, logs and check-config."""
        if not self.store:
            return ""
        return str(RedisAddress.parse(self.store))

    @property
    def store_password(self) -> str:
        return (RedisAddress.parse(self.store).password or "") if self.store else ""

    @property
    def effective_admin_password(self) -> str:
        """The password /admin asks for: ``[admin] password`` if set, else the CometQL password."""
        return self.admin_password or self.password

    def check(self) -> None:
        """Refuse settings that are wrong or unsafe, with a message naming the setting."""
        if self.longpoll_timeout <= 0 or self.session_ttl <= 0 or self.max_queued_bytes <= 0:
            raise ConfigError("longpoll_timeout, session_ttl and max_queued_bytes must be positive")
        for name in ("login_timeout", "request_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: {getattr(self, name):g} s must be positive")
        if self.ping_interval < 0:
            raise ConfigError(f"ping_interval: {self.ping_interval:g} s must not be negative (0: no pings)")
        if self.ping_timeout <= 0:
            raise ConfigError(f"ping_timeout: {self.ping_timeout:g} s must be positive")
        if self.advertise:
            if not self.store:
                raise ConfigError("advertise: only a cluster relays long-poll requests; set [store] url = redis://...")
            if self.tls_cert or self.tls_key:
                raise ConfigError("advertise: the relay between nodes speaks plain HTTP; terminate TLS in front")
            if not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}", self.advertise):
                raise ConfigError(f"advertise: {self.advertise!r} is not host:port")
        if self.queue_max_messages <= 0 or self.queue_max_bytes <= 0:
            raise ConfigError("queue_max_messages and queue_max_bytes must be positive")
        if not self.password:
            raise ConfigError("password: must not be empty (MySQL clients cannot log in with an empty password)")
        for name in ("mysql_port", "ws_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name}: {port} is not a TCP port")
        for name in ("mysql_max_connections", "ws_max_connections", "admin_login_attempts", "max_sessions_per_ip",
                     "command_rate", "command_burst", "max_message_size", "max_subscriptions", "stats_interval",
                     "stats_keep_days", "stats_channels", "queue_ttl"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: {getattr(self, name)} must not be negative")
        for name in ("max_statements", "max_insert_rows", "max_in_values"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: {getattr(self, name)} must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format: {self.log_format!r} is not 'text' or 'json'")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"log_level: {self.log_level!r} is not debug, info, warning or error")
        if self.tls_cert or self.tls_key:
            server_context(self)  # loads the files: a bad path fails here, at start-up
        if self.store:
            RedisAddress.parse(self.store)  # checks the url: a typo fails here, at start-up
        if self.workers < 1:
            raise ConfigError(f"workers: {self.workers} must be at least 1")
        if self.workers > 1 and not self.store:
            raise ConfigError("workers: more than 1 process needs a shared store; set [store] url = redis://...")
        if self.max_unauthenticated < 1 or self.max_handshakes < 1:
            raise ConfigError("max_unauthenticated and max_handshakes must be at least 1")
        if self.user_data_access not in ("anyone", "users", "self"):
            raise ConfigError(f"user_data_access: {self.user_data_access!r} is not one of anyone, users, self")
        if self.canary_interval < 0 or self.canary_timeout <= 0:
            raise ConfigError("canary_interval must be >= 0 (0: off) and canary_timeout > 0")
        if self.node_timeout < 1:
            raise ConfigError(f"node_timeout: {self.node_timeout:g} s is too short (at least 1)")
        trusted_networks(self.trusted_proxies)  # a typo fails here, at start-up
        if self.durability not in ("normal", "full"):
            raise ConfigError(f"durability: {self.durability!r} is not 'normal' or 'full'")
        if self.password == EXAMPLE_PASSWORD:
            for name in ("mysql_host", "ws_host"):
                if not _is_loopback(getattr(self, name)):
                    raise ConfigError(
                        f"{name}: refusing to listen on {getattr(self, name)} with the example password; "
                        "set [main] password, COMETQL_PASSWORD or --password first"
                    )


def trusted_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``[ws] trusted_proxies``: addresses and CIDR networks separated by commas or spaces."""
    networks = []
    for item in (i for i in re.split(r"[,\s]+", text) if i):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"trusted_proxies: {item!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _convert(setting: Setting, raw: str, origin: str) -> Any:
    if setting.type is bool:
        if raw in ("true", "True", "TRUE", "1", "yes", "on"):
            return True
        if raw in ("false", "False", "FALSE", "0", "no", "off", ""):
            return False
        raise ConfigError(f"{setting.name} ({origin}): {raw!r} is not true or false")
    if setting.type in (int, float):
        try:
            return setting.type(raw)
        except ValueError:
            kind = "an integer" if setting.type is int else "a number"
            raise ConfigError(f"{setting.name} ({origin}): {raw!r} is not {kind}") from None
    return raw


def read_ini(path: Path) -> tuple[dict[str, str], list[str]]:
    """Settings from a comet.ini file (ours or CppComet's) and warnings about unknown keys."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=(";", "#"),
                                       delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    try:
        text = path.read_text(encoding="utf-8")
        parser.read_string(text, source=str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    values: dict[str, str] = {}
    warnings: list[str] = []
    for section in parser.sections():
        if section in _IGNORED_SECTIONS:
            continue
        if section not in _KNOWN_SECTIONS:
            warnings.append(f"{path}: unknown section [{section}] ignored")
            continue
        for key, raw in parser.items(section):
            value = re.split(r"[;#]", raw, maxsplit=1)[0].strip()
            setting = _BY_INI.get((section, key))
            if setting is not None:
                values[setting.name] = value
            elif (section, key) not in _KNOWN_IGNORED:
                warnings.append(f"{path}: unknown key {key!r} in [{section}] ignored")
    return values, warnings


def load_config(
    *, config_file: str | None = None, env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None
) -> Config:
    """Build the effective configuration; later sources override earlier ones."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}
    warnings: list[str] = []
    config_file = config_file or env.get("COMETQL_CONFIG")
    if config_file:
        raw, warnings = read_ini(Path(config_file))
        for name, value in raw.items():
            values[name] = _convert(_BY_NAME[name], value, config_file)
            sources[name] = f"file {config_file}"
    for s in SETTINGS:
        if s.env in env:
            values[s.name] = _convert(s, env[s.env], s.env)
            sources[s.name] = f"env {s.env}"
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = value
            sources[name] = "flag"
    config = Config(**values, sources=sources, warnings=tuple(warnings))
    config.check()
    return config


def describe(config: Config) -> list[tuple[str, str, str]]:
    """(setting, value, source) rows, with the password masked."""
    out = []
    for f in dataclasses.fields(config):
        if f.name in ("sources", "warnings"):
            continue
        value = getattr(config, f.name)
        shown = "*" * 8 if f.name in ("password", "admin_password", "metrics_password") and value else str(value)
        if f.name == "store" and value:
            shown = config.store_display
        out.append((f.name, shown, config.sources.get(f.name, "default")))
    return out


def reference_markdown() -> str:
    """docs/configuration.md, generated from SETTINGS so the docs cannot drift (a test compares)."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- generated by cometql.config.reference_markdown(); do not edit by hand -->",
        "",
        "Sources, later ones win: defaults, a `comet.ini` file (`--config FILE` or `COMETQL_CONFIG`),",
        "`COMETQL_*` environment variables, command-line flags of `cometql serve`.",
        "CppComet's `comet.ini` files load unchanged; keys CometQL does not use are ignored, unknown ones",
        "are reported as warnings. A value ends at the first `;` or `#`, as in CppComet.",
        "",
        "| setting | comet.ini | environment | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        ini = f"`[{s.ini[0]}] {s.ini[1]}`" if s.ini else ""
        default = "`true`" if s.default is True else "`false`" if s.default is False else f"`{s.default}`"
        lines.append(f"| {s.name} | {ini} | `{s.env}` | {default} | {s.help} |")
    lines += [
        "",
        "The server refuses to listen on a non-loopback address while the password is the example",
        f"password `{EXAMPLE_PASSWORD}`.",
        "",
    ]
    return "\n".join(lines)


@functools.lru_cache(maxsize=16)
def _origin_hosts(allowed: str) -> frozenset[str]:
    """The hosts of a ``[ws] host`` setting (parsed once: it is checked at every handshake)."""
    return frozenset(h for h in re.split(r"[,\s]+", allowed) if h)


def origin_allowed(allowed: str, origin: str | None) -> bool:
    """``[ws] host``: ``*`` (default) allows every page; otherwise the Origin's host must be listed."""
    hosts = _origin_hosts(allowed)
    if not hosts or "*" in hosts or origin is None:
        return True
    host = origin.split("://", 1)[-1].split("/", 1)[0]
    return host in hosts or host.split(":", 1)[0] in hosts
