"""The examples in examples/ run as documented and do what they say.

Each example is run with its documented one-line command against the test
server (settings through the COMETQL_* variables it reads), while a WebSocket
subscriber stands in for a browser, so the tests check real effects: the
subscriber receives the publish, the history keeps it, the queued message can be
read back, and the statistics count the subscriber.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pymysql
import pytest

from ..servers import ServerProcess
from ._browser import browser, log_in_user
from ._run import HERE, REPO, Settings, mysql_cli, run

pytestmark = pytest.mark.clients

EXAMPLES = REPO / "examples"
#: Node finds the `mysql` package the tests install (make node-deps), not one in examples/node.
NODE_ENV = {"NODE_PATH": str(HERE / "node_modules")}
#: Text that breaks naive quoting in bash and in SQL.
TRICKY = "it's a \\ test; \"quoted\" $(echo no) `echo no` \\G ünïcode"


@pytest.fixture
def settings(server: ServerProcess, dev: int) -> Settings:
    return Settings.for_dev(server, dev)


@pytest.fixture
def query(server: ServerProcess, dev: int) -> Callable[..., list[tuple[str, ...]]]:
    def run_query(sql: str, *params: object) -> list[tuple[str, ...]]:
        conn: pymysql.Connection = server.connect(dev)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    return run_query


def test_notify_sh_publishes_any_text_to_subscribers_and_history(
        server: ServerProcess, dev: int, settings: Settings, query: Callable[..., list[tuple[str, ...]]]) -> None:
    query("INSERT INTO pipes_settings (name, length) VALUES ('web_alerts', 10)")
    words = TRICKY.split(" ") + ["two\nlines"]
    with browser(server, dev, "web_alerts") as tab:
        proc = run(["bash", EXAMPLES / "bash" / "notify.sh", "-e", "deploy", "web_alerts", *words],
                   env=settings.env())
        frame = tab.frame("web_alerts")
    message = " ".join(words)
    assert proc.stdout == "published to web_alerts\n"
    assert (frame["event"], frame["data"]) == ("deploy", message)
    assert query("SELECT event, message FROM pipes_messages WHERE name = 'web_alerts'") == [("deploy", message)]


def test_notify_sh_refuses_a_bad_channel_name_before_connecting(settings: Settings) -> None:
    proc = run(["bash", EXAMPLES / "bash" / "notify.sh", "no", "hello"], env=settings.env(), check=False)
    assert proc.returncode == 2
    assert "channel name must be 3-64 characters" in proc.stderr


@pytest.mark.parametrize(("command", "extra_env"), [
    pytest.param(["php", str(EXAMPLES / "php" / "publish.php")], {}, id="php-mysqli"),
    pytest.param([sys.executable, str(EXAMPLES / "python" / "backend.py")], {}, id="python-pymysql"),
    pytest.param(["node", str(EXAMPLES / "node" / "backend.js")], NODE_ENV, id="node-mysql"),
])
def test_backend_example_publishes_queues_and_reports_stats(
        command: list[str], extra_env: dict[str, str], server: ServerProcess, dev: int, settings: Settings,
        query: Callable[..., list[tuple[str, ...]]]) -> None:
    with browser(server, dev, "web_chat") as tab:
        proc = run([*command, "web_chat", "42", TRICKY], env={**settings.env(), **extra_env})
        frame = tab.frame("web_chat")
    assert (frame["event"], frame["data"]) == ("chat", TRICKY)
    assert proc.stdout.splitlines() == [
        "published to web_chat",
        "sent to user 42",
        "subscribers of web_chat: 1",
        "busiest channel: web_chat (1 subscribers)",
        "user 42: never seen",
    ]
    queued = query("SELECT id, event, message FROM users_messages WHERE id = 42")
    assert queued == [("42", "private", TRICKY)]


def test_online_users_sql_counts_a_connected_user(
        server: ServerProcess, dev: int, settings: Settings) -> None:
    key = log_in_user(server, dev, 2)
    with browser(server, dev, "web_chat", user_id=2, key=key):
        out = mysql_cli(settings, input=(EXAMPLES / "sql" / "online_users.sql").read_text()).stdout
    blocks = [line.split("\t") for line in out.splitlines()]
    assert blocks[:4] == [["name", "users"], ["web_chat", "1"], ["online_in_web_chat"], ["1"]]
    assert blocks[4] == ["user_id", "ip", "user_agent"]
    assert blocks[5][:2] == ["2", "127.0.0.1"]
    assert blocks[6:] == [["id", "time"], ["1", "-1"], ["2", "0"], ["3", "-1"], ["users_online_now"], ["1"]]
