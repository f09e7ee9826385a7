"""Command line: ``cometql serve`` (and friends). Parses flags into a Config, runs trio."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial

import trio

from ._version import __version__
from .bench import add_parser as add_bench_parser
from .checkconfig import add_parser as add_check_config_parser
from .config import SETTINGS, Config, describe, load_config
from .errors import CometQLError
from .logs import announce, setup_logging
from .server import Running, serve
from .workers import is_worker, supervise

__all__ = ["main"]

log = logging.getLogger("cometql")


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server", description="Run the CometQL server. "
                       "Settings come from defaults, then --config, then COMETQL_* variables, then these flags.")
    p.add_argument("--config", metavar="FILE", help="comet.ini-style file (CppComet's files load too)")
    p.add_argument("--host", help="address for both ports (default 127.0.0.1)")
    p.add_argument("--mysql-port", type=int, help="CometQL (MySQL protocol) port (default 3300)")
    p.add_argument("--ws-port", type=int, help="HTTP/WebSocket port for browsers (default 8087)")
    p.add_argument("--password", help="CometQL password (default: the example password, loopback only)")
    p.add_argument("--data-dir", help="directory for the SQLite store (default ./data)")
    p.add_argument("--base-dir", help="also serve static files from this directory on the browser port")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["text", "json"], help="one line per event: text (default) or JSON")
    p.add_argument("--tls-cert", help="PEM certificate: with --tls-key, both ports speak TLS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--store", metavar="URL", help="redis://host:port/db to share state with other nodes "
                   "(default: SQLite under --data-dir)")
    p.add_argument("--workers", type=int, metavar="N", help="server processes sharing the ports (needs --store)")
    p.add_argument("--ping-interval", type=float, metavar="S",
                   help="seconds between pings to every WebSocket session (default 25; 0: none)")
    p.add_argument("--ping-timeout", type=float, metavar="S",
                   help="close a WebSocket session silent this long after a ping (default 10)")
    env = ", ".join(s.env for s in SETTINGS)
    p.epilog = f"Environment variables: {env}, COMETQL_CONFIG."


async def _run(config_flags: dict[str, object], config_file: str | None, argv: Sequence[str]) -> None:
    config = load_config(config_file=config_file, flags=config_flags)
    _setup_logging(config)
    for warning in config.warnings:
        log.warning("%s", warning)
    reload = partial(_reload, config_file=config_file, flags=config_flags)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            if config.workers > 1 and not is_worker():
                workers: set[trio.Process] = set()
                nursery.start_soon(supervise, config, argv, workers)
                announce(config.log_format,
                         f"CometQL {__version__}: {config.workers} workers on {config.mysql_host}:{config.mysql_port}"
                         f" (CometQL) and {config.ws_host}:{config.ws_port} (browsers), store {config.store_display}",
                         version=__version__, workers=config.workers, store=config.store_display,
                         mysql=f"{config.mysql_host}:{config.mysql_port}",
                         browsers=f"{config.ws_host}:{config.ws_port}")
                await _handle_signals(signals, nursery, config, reload, workers)
                return
            running: Running = await nursery.start(serve, config)
            scheme = "wss" if config.tls_cert else "ws"
            announce(
                config.log_format,
                f"CometQL {__version__}\n"
                f"  CometQL (MySQL protocol): {config.mysql_host}:{running.mysql_port}"
                f"  (e.g. mysql -h {config.mysql_host} -P {running.mysql_port} -u root -p CometQL_v1)\n"
                f"  storage: {running.node.store.description}\n"
                f"  browsers: {scheme}://{config.ws_host}:{running.ws_port}/ws/"
                " (long-poll /lp/, library /cometql.js)",
                version=__version__, mysql=f"{config.mysql_host}:{running.mysql_port}",
                storage=running.node.store.description, browsers=f"{scheme}://{config.ws_host}:{running.ws_port}/ws/",
            )
            await _handle_signals(signals, nursery, config, reload, set())


def _setup_logging(config: Config) -> None:
    setup_logging(config.log_level, config.log_format,
                  secrets=(config.password, config.admin_password, config.store_password))


async def _handle_signals(signals: AsyncIterator[int], nursery: trio.Nursery, config: Config,
                          reload: Callable[[Config], Config], workers: set[trio.Process]) -> None:
    """SIGHUP: re-read the configuration (and pass the signal on to the workers); SIGINT/SIGTERM: shut down."""
    async for signum in signals:
        if signum == signal.SIGHUP:
            config = reload(config)
            for proc in list(workers):
                proc.send_signal(signal.SIGHUP)
            continue
        announce(config.log_format,
                 f"received {signal.Signals(signum).name}, shutting down (again to exit at once)",
                 signal=signal.Signals(signum).name)
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal: no more waiting
            signal.signal(sig, _exit_now)
        nursery.cancel_scope.cancel()
        break


def _reload(current: Config, *, config_file: str | None, flags: dict[str, object]) -> Config:
    """SIGHUP: load the configuration again; apply what is safe to change live (logging), log the rest.

    Everything else is fixed for the life of the process: the ports, TLS files and store are open
    sockets and files, and the limits and timeouts are frozen into each front and session when they
    are made (see docs/deployment.md, "Reload"). Returns the configuration now in force.
    """
    try:
        new = load_config(config_file=config_file, flags=flags)
    except CometQLError as exc:
        log.error("reload: %s; the running settings stay", exc)
        return current
    for warning in new.warnings:
        log.warning("reload: %s", warning)
    changed = [name for name, _, _ in describe(new) if getattr(new, name) != getattr(current, name)]
    live = {"log_level", "log_format"}
    in_force = dataclasses.replace(current, log_level=new.log_level, log_format=new.log_format)
    if live & set(changed):
        _setup_logging(in_force)
    later = [name for name in changed if name not in live]
    if later:
        log.warning("reload: %s changed; takes a restart to apply", ", ".join(later))
    applied = sorted(live & set(changed))
    log.info("reload: configuration re-read; applied: %s", ", ".join(applied) or "nothing")
    return in_force


def _exit_now(signum: int, frame: object) -> None:
    os._exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cometql", description="CometQL comet server")
    parser.add_argument("--version", action="version", version=f"cometql {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    add_bench_parser(sub)
    add_check_config_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=(getattr(args, "log_level", None) or "info").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mysql_mimic").setLevel(logging.CRITICAL)
    if args.command == "serve":
        flags = {
            "mysql_host": args.host,
            "ws_host": args.host,
            "mysql_port": args.mysql_port,
            "ws_port": args.ws_port,
            "password": args.password,
            "data_dir": args.data_dir,
            "base_dir": args.base_dir,
            "log_level": args.log_level,
            "log_format": args.log_format,
            "tls_cert": args.tls_cert,
            "tls_key": args.tls_key,
            "store": args.store,
            "workers": args.workers,
            "ping_interval": args.ping_interval,
            "ping_timeout": args.ping_timeout,
        }
        try:
            trio.run(_run, flags, args.config, list(argv if argv is not None else sys.argv[1:]))
        except (CometQLError, OSError, BaseExceptionGroup) as exc:
            cause = _first_leaf(exc)
            if isinstance(cause, CometQLError):
                print(f"cometql: {cause}", file=sys.stderr)
                return 2
            if isinstance(cause, OSError):
                print(f"cometql: cannot listen: {cause}", file=sys.stderr)
                return 1
            raise
        return 0
    return int(args.func(args))


def _first_leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups from trio nurseries."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    sys.exit(main())
