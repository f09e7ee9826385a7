"""Capabilities: only a session that announces them (``caps=``) sees anything new (spec, contract decisions).

CppComet's library sends no ``caps`` parameter and must keep getting CppComet's
frames byte for byte; ours announces what it understands and reads the accepted
list back from serverInfo.
"""

from __future__ import annotations

import orjson

from cometql.hub import NO_CAPS
from cometql.web._params import parse_caps, parse_params

from ..servers import ServerProcess
from ._wire import open_browser


def test_parse_caps_keeps_known_and_ignores_unknown() -> None:
    assert parse_caps("ack,offset,hb") == {"ack", "offset", "hb"}
    assert parse_caps("hb, ack ,future-thing") == {"ack", "hb"}
    assert parse_caps("") is NO_CAPS
    assert parse_caps("nothing-we-know") is NO_CAPS


def test_params_without_caps_have_none() -> None:
    assert parse_params("sesion=&myid=0&devid=1&v=4.08&uuid=&api=js").caps is NO_CAPS
    assert parse_params("sesion=&myid=0&devid=1&v=4.08&uuid=&api=js&caps=ack").caps == {"ack"}


async def test_server_info_lists_accepted_caps(ws_server: ServerProcess, dev: int) -> None:
    async with open_browser(ws_server, dev, caps="hb,ack,unknown") as b:
        hello = orjson.loads(b.hello)
        assert hello["event"] == "serverInfo"
        assert hello["caps"] == ["ack", "hb"]


async def test_server_info_without_caps_has_cppcomet_keys_only(ws_server: ServerProcess, dev: int) -> None:
    async with open_browser(ws_server, dev) as b:
        assert set(orjson.loads(b.hello)) == {"authorized", "data", "event", "message_send_time", "pipe", "server"}
