"""A real full disk: refused statements fail alone, leave no trace and are never delivered.

The server's data directory is on a small tmpfs that the test mounts (CI runs as
root) and fills. INSERTs into ``users_messages`` for an offline user then fail
with CometQL's error 500 while the disk is full; a statement the disk still
has room for, in the same group commit as one it has not, is stored. When space
is back and the user connects, exactly the accepted messages arrive, in order,
and ``SELECT`` showed exactly those before.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import trio

from ..servers import ServerProcess
from ..web._wire import mysql_rows, open_browser

DEV = 77
USER = 5
SMALL = "x" * 100
BIG = "y" * 400_000  # ~100 SQLite pages: more than the room left on the disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def server(small_disk: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(small_disk / "data").start()
    yield srv
    if srv.alive:
        srv.kill()


def fill(disk: Path, leave: int = 0) -> Path:
    """Write a file until the disk is full, then give back ``leave`` bytes."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


def insert(server: ServerProcess, messages: list[str]) -> list[str]:
    """INSERT each message for USER on one connection: "ok" or the error, per message."""
    conn = server.connect(DEV)
    out = []
    try:
        with conn.cursor() as cur:
            for message in messages:
                try:
                    cur.execute("INSERT INTO users_messages (id, event, message) VALUES (%s, 'ev', %s)",
                                (USER, message))
                    out.append("ok")
                except pymysql.MySQLError as exc:
                    code, text = exc.args
                    assert code == 500 and text.startswith("internal server error: "), exc.args
                    out.append(text)
    finally:
        conn.close()
    return out


async def insert_concurrently(server: ServerProcess, batches: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each list on its own connection, all at once (their statements share group commits)."""
    got: dict[str, list[str]] = {}

    async def run(name: str, messages: list[str]) -> None:
        got[name] = await trio.to_thread.run_sync(insert, server, messages)

    async with trio.open_nursery() as nursery:
        for name, messages in batches.items():
            nursery.start_soon(run, name, messages)
    return got


def queued(server: ServerProcess) -> list[str]:
    return [row[0] for row in mysql_rows(server, DEV, f"SELECT message FROM users_messages WHERE id = {USER}")]


async def test_refused_inserts_on_a_full_disk_leave_no_trace(server: ServerProcess, small_disk: Path) -> None:
    accepted = [f"before {n}" for n in range(3)]
    assert insert(server, accepted) == ["ok"] * 3

    # 1. the disk is full: every INSERT is refused with a clear error, and none of them shows
    filler = fill(small_disk)
    refused = [f"refused {n} {SMALL}" for n in range(50)]
    got = await insert_concurrently(server, {f"conn{c}": refused[c::5] for c in range(5)})
    errors = [e for results in got.values() for e in results]
    assert len(errors) == 50 and all("disk is full" in e for e in errors), errors[:3]
    assert queued(server) == accepted

    # 2. a little room: small statements fit, big ones do not, in the same group commits
    os.unlink(filler)
    fill(small_disk, leave=160_000)
    big = [f"big {n} {BIG}" for n in range(4)]
    small = [f"small {n}" for n in range(4)]
    got = await insert_concurrently(server, {"big": big, "small": small})
    assert all("disk is full" in e for e in got["big"]), got["big"]
    fitted = [m for m, r in zip(small, got["small"], strict=True) if r == "ok"]
    assert fitted, got["small"]  # at least one small neighbour of a failing big one was stored
    accepted += fitted
    assert queued(server) == accepted

    # 3. space is back: the accepted messages arrive when the user connects, and nothing else
    (small_disk / "filler").unlink()
    assert insert(server, ["after"]) == ["ok"]
    accepted.append("after")
    conn = server.connect(DEV)
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO users_auth (id, hash) VALUES ({USER}, 'h{USER}')")
    conn.close()
    async with open_browser(server, DEV, user_id=USER, key=f"h{USER}") as browser:
        assert '"authorized":true' in browser.hello
        frames = await browser.recv_many(len(accepted))
        await browser.silence(0.5)
    assert [f for f in frames if '"pipe":"msg"' in f] == frames
    got_messages = [m for f in frames for m in accepted if f'"data":"{m}"' in f]
    assert got_messages == accepted
    assert queued(server) == []
    assert server.alive
