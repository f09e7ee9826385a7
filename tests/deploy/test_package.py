"""`pip install` of a built wheel, and of the source tree, gives a working `cometql serve` outside the checkout.

Each install goes into its own fresh venv (see conftest.py), and the server runs
from a temporary directory with no PYTHONPATH: the static files (the browser
library, the dashboard) must come from the installed package.
"""

from __future__ import annotations

import base64
import signal
import socket
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import pymysql
import pytest

from ..servers import PASSWORD, free_port
from .conftest import REPO, Built, Venv, clean_env, run

pytestmark = pytest.mark.timeout(300)


def test_the_wheel_carries_the_static_files_and_the_license_without_deprecation_warnings(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
    for path in ("cometql/web/static/cometql.js", "cometql/web/static/cometql.mjs",
                 "cometql/web/static/admin/index.html", "cometql/web/static/admin/admin.js",
                 "cometql/web/static/admin/admin.css", "cometql/__main__.py"):
        assert path in names
    assert not any(n.startswith(("tests/", "examples/", "bench/")) for n in names)
    meta = zipfile.ZipFile(built.wheel).read(f"{built.wheel.name.split('-')[0]}-"
                                             f"{built.wheel.name.split('-')[1]}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "deprecat" not in built.output.lower(), built.output


@pytest.fixture(params=["wheel_venv", "source_venv"])
def installed(request: pytest.FixtureRequest) -> Venv:
    """A fresh venv with the built wheel installed, or with ``pip install`` of the source tree."""
    venv: Venv = request.getfixturevalue(request.param)
    return venv


@pytest.fixture
def built(built_wheel: Built) -> Built:
    return built_wheel


def test_cometql_and_python_m_cometql_run_from_the_installed_package(installed: Venv, tmp_path: Path) -> None:
    env = clean_env()
    origin = run([installed.python, "-c", "import cometql; print(cometql.__file__)"], env=env, cwd=tmp_path).stdout
    assert Path(origin.strip()).is_relative_to(installed.path) and not Path(origin.strip()).is_relative_to(REPO)
    version = run([installed.bin / "cometql", "--version"], env=env, cwd=tmp_path).stdout
    assert version.startswith("cometql ")
    assert run([installed.python, "-m", "cometql", "--version"], env=env, cwd=tmp_path).stdout == version
    assert "serve" in run([installed.python, "-m", "cometql", "--help"], env=env, cwd=tmp_path).stdout


def _wait_port(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30  # hang guard
    while True:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the installed server did not listen"
            time.sleep(0.05)


def _get(port: int, path: str, auth: bool = False) -> tuple[int, bytes]:
    headers = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()} if auth else {}
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers),
                                timeout=10) as resp:
        return resp.status, resp.read()


def test_the_installed_server_serves_sql_the_library_and_the_dashboard(installed: Venv, tmp_path: Path) -> None:
    mysql_port, ws_port = free_port(), free_port()
    proc = subprocess.Popen(
        [installed.bin / "cometql", "serve", "--mysql-port", str(mysql_port), "--ws-port", str(ws_port)],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_port(mysql_port, proc)
        _wait_port(ws_port, proc)
        conn = pymysql.connect(host="127.0.0.1", port=mysql_port, user="root", password=PASSWORD,
                               database="CometQL_v1", autocommit=True, connect_timeout=5, read_timeout=10)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO pipes_settings (name, length) VALUES ('web_pkg', 5)")
            cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES ('web_pkg', 'e', 'installed')")
            cur.execute("SELECT message FROM pipes_messages WHERE name = 'web_pkg'")
            assert cur.fetchall() == (("installed",),)
        conn.close()
        status, library = _get(ws_port, "/cometql.js")
        assert status == 200 and library == (REPO / "cometql/web/static/cometql.js").read_bytes()
        status, page = _get(ws_port, "/admin", auth=True)
        assert status == 200 and page == (REPO / "cometql/web/static/admin/index.html").read_bytes()
        assert (tmp_path / "data").is_dir()  # the default data directory, relative to where it runs
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
