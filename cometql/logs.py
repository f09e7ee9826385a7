"""Logging: one line per event, human-readable or JSON, with secrets redacted.

``setup_logging`` installs a handler on the root logger whose filter rewrites
every record before any formatter sees it: the CometQL password and other
registered secrets, JWTs, ``user_key``/``password``/``hash``/``token`` values and
the string literals of statements about ``users_auth`` and ``revoked_tokens``
(their hashes and tokens) become ``***``. The filter sits on the handler, so
records from every logger (ours, trio, libraries) pass through it.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

__all__ = ["JsonFormatter", "RedactFilter", "redact", "setup_logging"]

MASK = "***"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PAIR = re.compile(r"(?i)\b(user_key|password|passwd|hash|token|secret|key)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;]+)")
_SECRET_TABLES = re.compile(r"(?i)\b(users_auth|revoked_tokens)\b")
_SQL_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"")
#: Fields of a LogRecord that are not "extra" fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every known kind of secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _JWT.sub(MASK, text)
    if _SECRET_TABLES.search(text):
        text = _SQL_STRING.sub(f"'{MASK}'", text)
    return _PAIR.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


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
        return orjson.dumps(obj, default=str).decode()


def setup_logging(level: str = "info", fmt: str = "text", secrets: tuple[str, ...] = (),
                  stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one that redacts and formats as asked."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("mysql_mimic").setLevel(logging.CRITICAL)
