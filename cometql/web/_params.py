"""The connection parameters a browser sends, from a WebSocket URL or a long-poll body.

CppComet's client builds ``/ws/sesion=<key>&myid=<uid>&devid=<dev>&v=4.08&uuid=<uuid>&api=js``
(no ``?``, no URL-encoding). We read it by key, accept a leading ``?``, and
report CppComet's error codes for missing parts. Pure functions.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

from ..hub import KNOWN_CAPS, NO_CAPS

__all__ = ["ConnectParams", "ParamsError", "WS_PREFIXES", "parse_caps", "parse_params", "ws_tail"]

WS_PREFIXES = ("/ws/", "//ws/", "/comet-server/ws/", "//comet-server/ws/")
_VERSION = re.compile(r"(\d+)\.(\d+)\Z")
_UUID = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z")


class ParamsError(Exception):
    """A bad connection request: CppComet's error code and text, sent in an error frame."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class ConnectParams:
    key: str
    user_id: int
    dev_id: int
    version: str
    uuid: str
    #: The capabilities the browser announced (``caps=ack,offset,hb``) that this server knows; empty for
    #: CppComet's library, which then gets CppComet's frames byte for byte.
    caps: frozenset[str] = NO_CAPS


def ws_tail(path: str) -> str | None:
    """The parameter part of a WebSocket path, or None if the path is not a WebSocket route."""
    for prefix in WS_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
        if path + "/" == prefix:
            return ""
    return None


def _int(text: str, limit: int) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 18:
        return 0
    value = int(text)
    return value if value < limit else 0


def parse_params(tail: str, *, dev_index_size: int = 100000) -> ConnectParams:
    """Parse ``sesion=..&myid=..&devid=..&v=..&uuid=..``; raise ParamsError like CppComet."""
    tail = tail.lstrip("?")
    if "=" not in tail:
        raise ParamsError(401, "Error code 401(Invalid request, session ID not found)")
    fields: dict[str, str] = {}
    for part in tail.split("&"):
        name, sep, value = part.partition("=")
        if sep and name not in fields:
            fields[name] = unquote(value) if "%" in value else value  # CppComet's client never encodes
    key = fields.get("sesion")
    if key is None:
        key = fields.get("session", tail.split("=", 1)[1].split("&", 1)[0])
    if "myid" not in fields:
        raise ParamsError(401, "Error code 401(Invalid request, the user ID can not be found)")
    if "devid" not in fields:
        raise ParamsError(406, "Error code 406(Invalid request, no public key found [1])")
    version = fields.get("v", "4.08")
    if not _VERSION.match(version):
        raise ParamsError(418, "Error code 418(Invalid request Not assigned client api version)\n")
    uuid = fields.get("uuid", "")
    return ConnectParams(
        key=key[:4096],
        user_id=_int(fields["myid"], 10**18),
        dev_id=_int(fields["devid"], dev_index_size),
        version=version,
        uuid=uuid if _UUID.match(uuid) else "",
        caps=parse_caps(fields.get("caps", "")),
    )


@functools.lru_cache(maxsize=64)  # a library sends the same list on every connect: parsed once
def parse_caps(text: str) -> frozenset[str]:
    """The known capabilities in a comma-separated list; unknown ones are ignored (a newer library)."""
    if not text:
        return NO_CAPS
    caps = frozenset(c.strip() for c in text.split(",")) & KNOWN_CAPS
    return caps or NO_CAPS
