"""The plain HTTP routes of the browser port: /info, the served library, the logo page,
errors, and CORS on every reply.
"""

from __future__ import annotations

import json

import pytest

from ..servers import ServerProcess
from ._wire import http_request


@pytest.mark.parametrize("path", ["/info", "/comet-server/info"])
async def test_info_is_json(ws_server: ServerProcess, path: str) -> None:
    reply = await http_request(ws_server.ws_port, "GET", path)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    info = json.loads(reply.body)
    assert info["status"] == "ok"
    assert isinstance(info["node"], str) and info["node"]


@pytest.mark.parametrize(("path", "marker"), [
    ("/cometql.js", b"CometServer"),
    ("/CometServerApi.js", b"CometServer"),  # a page written for CppComet changes only the host
    ("/cometql.mjs", b"export default"),
])
async def test_browser_library_is_served_as_javascript(ws_server: ServerProcess, path: str, marker: bytes) -> None:
    reply = await http_request(ws_server.ws_port, "GET", path)
    assert reply.status == 200
    assert "javascript" in reply.headers["content-type"]
    assert marker in reply.body
    assert int(reply.headers["content-length"]) == len(reply.body)


async def test_root_page_and_unknown_paths(ws_server: ServerProcess) -> None:
    port = ws_server.ws_port
    root = await http_request(port, "GET", "/")
    assert root.status == 200 and root.headers["content-type"].startswith("text/html")
    missing = await http_request(port, "GET", "/no/such/file.txt")
    assert (missing.status, json.loads(missing.body)) == (404, {"error": "not found"})
    not_upgraded = await http_request(port, "GET", "/ws/sesion=&myid=0&devid=1&v=4.08")
    assert not_upgraded.status == 426
    wrong_method = await http_request(port, "POST", "/info", b"x")
    assert wrong_method.status == 405


async def test_cors_headers_on_every_reply(ws_server: ServerProcess) -> None:
    port = ws_server.ws_port
    origin = "https://shop.example.test"
    for method, path in (("GET", "/info"), ("GET", "/cometql.js"), ("GET", "/missing"), ("OPTIONS", "/info")):
        reply = await http_request(port, method, path, headers={"Origin": origin})
        assert reply.headers["access-control-allow-origin"] == origin, (method, path)
        assert "GET" in reply.headers["access-control-allow-methods"]
    anonymous = await http_request(port, "GET", "/info")
    assert anonymous.headers["access-control-allow-origin"] == "*"
