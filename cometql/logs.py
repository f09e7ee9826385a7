"""Logging: one line per event, human-readable or JSON, with secrets redacted.

``setup_logging`` installs a handler on the root logger whose filter rewrites
every record before any formatter sees it: the CometQL password and other
registered secrets, JWTs, ``user_key``/``password``/``hash``/``token`` values and
the string literals of statements about ``users_auth`` and ``revoked_tokens``
(their hashes and tokens) become ``***``. When such a statement is quoted inside
another text (sqlglot's "'...' contains unsupported syntax" quotes the whole
statement) or a literal is left open, the literals cannot be told apart, so
everything from the first quote on is masked. The filter sits on the handler, so
records from every logger (ours, trio, libraries) pass through it.

A record is one line in both formats: the text format escapes control
characters (a newline inside a statement is written ``\\n``, a traceback too),
so nothing a client sends can start a forged line; JSON escapes them anyway.
Library loggers that repeat statement text (sqlglot) and mysql-mimic's own
chatter are heard only at the debug level (sqlglot) or not at all (mysql-mimic).
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

__all__ = ["JsonFormatter", "RedactFilter", "TextFormatter", "announce", "escape_controls", "redact", "setup_logging"]

MASK = "***"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PAIR = re.compile(r"(?i)\b(user_key|password|passwd|hash|token|secret|key)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;]+)")
_SECRET_TABLES = re.compile(r"(?i)\b(users_auth|revoked_tokens)\b")
#: Unrolled and possessive, as ``sql._values.SINGLE_QUOTED`` (not imported: ``logs`` is a layer below ``sql``):
#: a long literal costs no regex stack.
_SQL_STRING = re.compile(r"'[^'\\]*+(?:(?:\\.|'')[^'\\]*+)*+'" + r'|"[^"\\]*+(?:(?:\\.|"")[^"\\]*+)*+"')
#: What may stand right before / after a string literal in a statement; anything else (``'***'abc``) means
#: the literals were paired wrongly, e.g. because the statement was itself quoted by the one who logged it.
_LITERAL_BEFORE = frozenset(" \t\r\n(,=<>!")
_LITERAL_AFTER = frozenset(" \t\r\n),;")
#: Characters that would end or disturb a line of the text format: C0/C1 controls (but tab) and the
#: Unicode line/paragraph separators (``str.splitlines`` splits at them too).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_NAMES = {"\n": "\\n", "\r": "\\r"}
#: Fields of a LogRecord that are not "extra" fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every known kind of secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _JWT.sub(MASK, text)
    if _SECRET_TABLES.search(text):
        text = _mask_literals(text)
    return _PAIR.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


def _mask_literals(text: str) -> str:
    """Every string literal of ``text`` masked; from the first quote to the end if they do not pair up cleanly."""
    pieces: list[str] = []
    pos = 0
    for m in _SQL_STRING.finditer(text):
        start, end = m.span()
        if (start and text[start - 1] not in _LITERAL_BEFORE) or (end < len(text) and text[end] not in _LITERAL_AFTER):
            return _mask_from_first_quote(text)
        pieces += (text[pos:start], f"'{MASK}'")
        pos = end
    rest = text[pos:]
    if "'" in rest or '"' in rest:  # a literal left open
        return _mask_from_first_quote(text)
    return "".join(pieces) + rest


def _mask_from_first_quote(text: str) -> str:
    quotes = [i for i in (text.find("'"), text.find('"')) if i >= 0]
    return text[: min(quotes)] + f"'{MASK}'"


def escape_controls(text: str) -> str:
    """``text`` on one line: newlines and other control characters written as ``\\n``, ``\\x1b``, ``\\u2028``."""
    return _CONTROL.sub(_escape_control, text)


def _escape_control(m: re.Match[str]) -> str:
    c = m.group()
    return _CONTROL_NAMES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


class RedactFilter(logging.Filter):
    """Rewrites each record's message (and string extra fields) with ``redact``."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value, self.secrets))
        return True


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, always one line: control characters of the message and traceback are escaped."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD:
                obj[name] = value
        if record.exc_info or record.exc_text:
            obj["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        # JSON escapes control characters itself; U+2028/9 are legal raw in JSON but split lines elsewhere
        return orjson.dumps(obj, default=str).decode().replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def setup_logging(level: str = "info", fmt: str = "text", secrets: tuple[str, ...] = (),
                  stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one that redacts and formats as asked."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("mysql_mimic").setLevel(logging.CRITICAL)
    # sqlglot warns with the whole statement ("'...' contains unsupported syntax"): noise for operators,
    # and a statement can carry secrets (masked anyway); kept for debugging
    logging.getLogger("sqlglot").setLevel(logging.NOTSET if level.lower() == "debug" else logging.ERROR)


def announce(fmt: str, text: str, stream: TextIO | None = None, **fields: object) -> None:
    """Print what ``serve`` tells its operator (the banner, the shutdown note) on stdout, in the log format.

    Text: ``text`` as it is (several lines for the banner). JSON: one record like the log's (its first line
    as the message, ``fields`` as keys), so a JSON log stays JSON from the first line to the last.
    """
    out = stream or sys.stdout
    if fmt == "json":
        record = logging.LogRecord("cometql", logging.INFO, "", 0, text.split("\n", 1)[0], None, None)
        record.__dict__.update(fields)
        text = JsonFormatter().format(record)
    print(text, file=out, flush=True)
