"""Every command and SQL block of the README, docs/ and the examples' READMEs runs, so the docs cannot drift.

Blocks are found by their fence's language tag:

- ``sql``: fed to the ``mysql`` CLI logged in to the test server (as a user pastes them);
- ``bash``/``sh``/``php``/``python``: run as written in a sandbox with the documented ports (``sandbox.py``;
  Python is the test venv's, which has the drivers the docs use);
- ``ini``: a ``comet.ini`` passes ``cometql check-config`` without a warning; the systemd unit is the
  shipped file (``tests/deploy/test_systemd.py`` verifies it);
- ``nginx``: the shipped example (``tests/browser/test_nginx.py`` runs it);
- ``html``, ``js`` and untagged blocks (diagrams) are browser code or pictures, not commands: the
  browser library is tested in Chromium (tests/browser).

A block that cannot run here is in ``SKIP`` with the reason, and gets no test case (the suite has no
skipped tests: these are covered where each reason says); every entry must still name a block. A
new language tag fails ``test_every_block_has_a_known_language`` until someone decides how to check it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..servers import ServerProcess
from .blocks import REPO, Block, all_blocks
from .sandbox import run_block

SHELL = ("bash", "sh")
CHECKED = {"sql", "ini", "nginx", "php", "python", *SHELL}
NOT_COMMANDS = {"html", "js", ""}

#: (document, the block's first non-empty line) -> why it does not run here.
SKIP: dict[tuple[str, str], str] = {
    ("README.md", "make serve   # runs the server: CometQL (MySQL protocol) on 127.0.0.1:3300"):
        "`make test` is this suite itself, and `make serve` reinstalls the venv and runs until Ctrl-C "
        "(the same server is started here for every other block)",
    ("docs/deployment.md", "python3 -m venv /opt/cometql"):
        "installs into /opt with every dependency from PyPI; tests/deploy/ installs the same package, "
        "wheel and source tree, into fresh venvs offline and runs it",
    ("docs/deployment.md", "useradd --system --no-create-home --shell /usr/sbin/nologin cometql"):
        "needs systemd as PID 1 and changes /etc; the unit is checked by systemd-analyze in tests/deploy/",
    ("docs/performance.md", "git worktree add --detach ../before <commit>; git worktree add --detach ../after main"):
        "compares two checkouts for minutes; tests/test_bench.py runs the benchmark scenarios small",
    ("docs/performance.md", "make bench                                         # the standard set; rewrites "
                            "the table below"):
        "benchmarks run for minutes and rewrite this document; tests/test_bench.py runs the scenarios small",
    ("docs/delivery.md", ".venv/bin/cometql bench soak                       "
                         "# 50 pages for 60 s (-n pages, --duration s)"):
        "the long soak runs for minutes in Chromium; the same soak runs in `make test` at 10 pages for 30 s "
        "(tests/browser/test_chaos_soak.py)",
    ("examples/grafana/README.md", "sudo cp datasource.yaml /etc/grafana/provisioning/datasources/cometql.yaml"):
        "installs into a Grafana server (not on this machine); tests/ops/test_stats_history.py runs the "
        "dashboard's queries as Grafana expands them",
    ("docs/scaling.md", 'cometql serve --host 0.0.0.0 --password "$SECRET" --store redis://redis.internal:6379/0'):
        "names another machine (redis.internal); the same command on one machine is the recipe below it",
    ("examples/php_chat/README.md", "make serve                                       # terminal 1: CometQL on "
                                    "3300 (SQL) and 8087 (browser)"):
        "two servers in two terminals until Ctrl-C; tests/browser/test_php_chat.py runs this chat with two "
        "Chromium windows",
    ("examples/php_chat/README.md", "COMETQL_PORT=3301 COMETQL_NODE=127.0.0.1:8088 php -S 127.0.0.1:8000 -t "
                                    "examples/php_chat"):
        "a web server until Ctrl-C, on settings tests/browser/test_php_chat.py passes the same way",
}

#: Blocks that start their servers in the foreground and never return: probed once they listen.
SERVES = {
    ("README.md", "redis-server --appendonly yes --daemonize yes          # Debian: apt-get install redis-server"),
    ("docs/scaling.md", "# one Redis (Debian: apt-get install redis-server)"),
}

#: What the README's install step (``npm install`` in examples/node) gives: the tests' copy of the same package.
NODE_PATH = str(REPO / "tests" / "clients" / "node_modules")

BLOCKS = all_blocks()


def _key(block: Block) -> tuple[str, str]:
    return (block.path, block.head)


def _blocks(*langs: str) -> list[pytest.param]:  # type: ignore[valid-type]
    return [pytest.param(b, id=str(b)) for b in BLOCKS if b.lang in langs and _key(b) not in SKIP]


def test_every_block_has_a_known_language() -> None:
    unknown = [str(b) for b in BLOCKS if b.lang not in CHECKED | NOT_COMMANDS]
    assert not unknown, "decide how the tests check these blocks (a runner here, or NOT_COMMANDS)"


def test_every_skip_and_serve_names_a_block() -> None:
    keys = {_key(b) for b in BLOCKS}
    assert not (set(SKIP) | SERVES) - keys, "a documented block changed: update SKIP / SERVES"


@pytest.mark.parametrize("block", _blocks("sql"))
def test_sql_block_runs_in_the_mysql_cli(block: Block, server: ServerProcess, dev: int) -> None:
    proc = subprocess.run(["mysql", "-h", server.host, "-P", str(server.port), "-u", str(dev),
                           f"-p{server.password}", "CometQL_v1"],
                          input=block.text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{block}: {proc.stderr}"


@pytest.mark.parametrize("block", _blocks(*SHELL, "php", "python"))
def test_command_block_runs_as_documented(block: Block, tmp_path: Path) -> None:
    interpreter = {"php": "php", "python": sys.executable}.get(block.lang, "bash -e -o pipefail")
    text = block.text if block.lang != "php" or block.text.startswith("<?php") else "<?php\n" + block.text
    mode = "serves" if _key(block) in SERVES else "run"
    proc = run_block(text, mode=mode, interpreter=interpreter, scratch=tmp_path, env={"NODE_PATH": NODE_PATH})
    assert proc.returncode == 0, f"{block} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("block", _blocks("ini"))
def test_ini_block_is_a_valid_config_or_the_shipped_unit(block: Block, tmp_path: Path) -> None:
    if "[Service]" in block.text:
        assert block.text == (REPO / "examples" / "systemd" / "cometql.service").read_text()
        return
    path = tmp_path / "comet.ini"
    path.write_text(block.text)
    proc = subprocess.run([sys.executable, "-m", "cometql", "check-config", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "warning" not in proc.stderr, f"{block}: {proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("block", _blocks("nginx"))
def test_nginx_block_is_the_tested_example(block: Block) -> None:
    assert block.text == (REPO / "examples" / "nginx" / "cometql.conf").read_text()
