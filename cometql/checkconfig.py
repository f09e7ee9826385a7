"""``cometql check-config FILE``: validate a comet.ini (ours or CppComet's) without starting anything.

Loads the file the way ``serve`` would (then ``COMETQL_*`` variables on top;
it takes no other flags), prints every effective setting with where it came
from (file, env or default), and prints unknown keys as warnings. A wrong value,
a missing file or a bad certificate exits with status 2 and the same precise
message ``serve`` would give, after the file's warnings (an unknown key next to
a bad value is often the same typo).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import describe, load_config, read_ini
from .errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``check-config`` on ``cometql``'s subcommands (``func=run``)."""
    p = subparsers.add_parser("check-config", help="validate a comet.ini and show the effective settings",
                              description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("file", metavar="FILE", help="comet.ini-style file (CppComet's files load too)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(config_file=args.file)
    except ConfigError as exc:
        try:
            _, warnings = read_ini(Path(args.file))
        except ConfigError:  # the file itself cannot be read or parsed: the error says so
            warnings = []
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"cometql: {args.file}: error: {exc}", file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rows = describe(config)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}} = {value!s:<24} ({source})")
    print(f"{args.file}: OK" + (f" ({len(config.warnings)} warning(s))" if config.warnings else ""))
    return 0
