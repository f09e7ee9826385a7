"""Statement cost is bounded and never blocks others (over the wire, default bounds).

* While one connection runs about a megabyte of statements, a second MySQL
  connection's ``SELECT 1`` and a browser's WebSocket ping keep being answered
  (counted, not timed).
* Each bound answers its CometQL code with a message naming the bound, and the
  connection stays usable.
* The shapes backends send keep working: 100 INSERTs in one query, a 1,000-row
  INSERT, IN lists of 1,000 ids.
* A multi-statement answers every statement, as MySQL does
  (SERVER_MORE_RESULTS_EXISTS on all but the last); a client that did not ask
  for multi-statements gets the last answer only, as before.
"""

from __future__ import annotations

import pymysql
import pytest
import trio
from pymysql.constants import CLIENT

from ..clients._run import Settings, mysql_cli
from ..servers import ServerProcess
from ..web._wire import open_browser

HANG_GUARD = 120


def _ids(n: int, start: int = 1) -> str:
    return ", ".join(str(i) for i in range(start, start + n))


def _multi(server: ServerProcess, dev: int) -> pymysql.Connection:
    return server.connect(dev, client_flag=CLIENT.MULTI_STATEMENTS)


def _all_results(cur: pymysql.cursors.Cursor) -> list[list[tuple[object, ...]] | int]:
    """Every answer of the last query: rows of a result set, or the affected rows of an OK."""
    out: list[list[tuple[object, ...]] | int] = []
    while True:
        out.append([tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount)
        if not cur.nextset():
            return out


# ---------------------------------------------------------------- others progress


async def test_others_are_answered_while_a_megabyte_of_statements_runs(server: ServerProcess, dev: int) -> None:
    heavy = ";".join([f"DELETE FROM users_messages WHERE id IN ({_ids(200)})"] * 1000)
    assert len(heavy) < 1024 * 1024  # under max_query_size: accepted, and all of it runs
    worker, prober = server.connect(dev), server.connect(dev)
    done = trio.Event()
    answered = {"SELECT 1": 0, "ping": 0}

    def run_heavy() -> None:
        with worker.cursor() as cur:
            cur.execute(heavy)

    async def heavy_client() -> None:
        await trio.to_thread.run_sync(run_heavy)
        done.set()

    def select_one() -> None:
        with prober.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)

    try:
        with trio.fail_after(HANG_GUARD):
            async with open_browser(server, dev) as browser, trio.open_nursery() as nursery:
                async def mysql_probe() -> None:
                    while not done.is_set():
                        await trio.to_thread.run_sync(select_one)
                        answered["SELECT 1"] += not done.is_set()

                async def browser_probe() -> None:
                    while not done.is_set():
                        await browser.ws.ping()
                        answered["ping"] += not done.is_set()

                nursery.start_soon(heavy_client)
                nursery.start_soon(mysql_probe)
                nursery.start_soon(browser_probe)
    finally:
        worker.close()
        prober.close()
    # one statement that held the event loop would let neither probe through until it ended
    assert answered["SELECT 1"] >= 10 and answered["ping"] >= 10, answered


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize("sql, code, bound", [
    (";".join(["SELECT 1"] * 1001), 22, "1000"),
    ("INSERT INTO users_data (id, data) VALUES " + ", ".join(f"({i}, 'x')" for i in range(1, 10_002)), 19, "10000"),
    (f"SELECT * FROM users_time WHERE id IN ({_ids(10_001)})", 19, "10000"),
    (f"SELECT * FROM users_time WHERE time > 0 OR id IN ({_ids(1001)})", 19, "1000"),
    ("SELECT * FROM users_time WHERE " + "(" * 33 + "id = 1" + ")" * 33, 23, "32"),
    ("SELECT " + "(" * 100_000 + "1" + ")" * 100_000, 23, "32"),
    ("SELECT * FROM users_time WHERE " + " OR ".join(f"id = {i}" for i in range(66)), 18, "64"),
    ("SELECT 1" + " + 1" * 600, 24, "1000"),
    ("SELECT " + "NOT " * 900 + "1", 23, "32"),
], ids=["statements", "insert-rows", "in-values", "filter-values", "depth", "very-deep", "conditions", "tokens",
        "unary-chain"])
def test_each_bound_answers_its_code_and_the_connection_stays_usable(db, sql: str, code: int, bound: str) -> None:
    with pytest.raises(pymysql.MySQLError) as caught:
        db.execute(sql)
    got, message = caught.value.args
    assert got == code, message
    assert bound in message
    db.execute("SELECT 1")
    assert db.fetchall() == ((1,),)


def test_a_refused_multi_statement_runs_none_of_it(server: ServerProcess, dev: int) -> None:
    sql = "INSERT INTO users_data (id, data) VALUES (1, 'ran');" + ";".join(["SELECT 1"] * 1000)
    with _multi(server, dev) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as caught:
            cur.execute(sql)
        assert caught.value.args[0] == 22
        cur.execute("SELECT * FROM users_data WHERE id = 1")
        assert cur.fetchall() == ()


# ---------------------------------------------------------------- shapes that must work


def test_a_1000_row_insert_and_in_lists_of_1000_ids(db) -> None:
    rows = ", ".join(f"({i}, 'data {i}')" for i in range(1, 1001))
    assert db.execute(f"INSERT INTO users_data (id, data) VALUES {rows}") == 1000
    db.execute(f"SELECT id, data FROM users_data WHERE id IN ({_ids(1000)})")
    got = db.fetchall()
    assert len(got) == 1000 and got[0] == ("1", "data 1") and got[-1] == ("1000", "data 1000")
    db.execute(f"SELECT COUNT(*) FROM users_data WHERE data <> 'data 7' AND id IN ({_ids(1000)})")
    assert db.fetchall() == (("999",),)  # every value of a CometQL table is text
    db.execute(f"DELETE FROM users_data WHERE id IN ({_ids(1000)})")
    db.execute(f"SELECT id FROM users_data WHERE id IN ({_ids(1000)})")
    assert db.fetchall() == ()


def test_100_inserts_in_one_query_answer_100_times(server: ServerProcess, dev: int) -> None:
    sql = ";".join(f"INSERT INTO users_data (id, data) VALUES ({i}, 'v{i}')" for i in range(1, 101))
    with _multi(server, dev) as conn, conn.cursor() as cur:
        cur.execute(sql)
        assert _all_results(cur) == [1] * 100
        cur.execute(f"SELECT COUNT(*) FROM users_data WHERE id IN ({_ids(100)})")
        assert cur.fetchall() == (("100",),)


# ---------------------------------------------------------------- multi-statements


def test_a_multi_statement_answers_every_statement_in_order(server: ServerProcess, dev: int) -> None:
    sql = ("SELECT 1 AS a; INSERT INTO users_data (id, data) VALUES (5, 'five'); "
           "SELECT id, data FROM users_data WHERE id = 5; SET NAMES utf8mb4; SHOW DATABASES")
    with _multi(server, dev) as conn, conn.cursor() as cur:
        cur.execute(sql)
        assert _all_results(cur) == [[(1,)], 1, [("5", "five")], 0, [("CometQL_v1",)]]
        cur.execute("SELECT 2")  # the connection is in step after the last answer
        assert cur.fetchall() == ((2,),)


def test_an_error_ends_a_multi_statement_after_the_answers_before_it(server: ServerProcess, dev: int) -> None:
    with _multi(server, dev) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1; SELECT * FROM nosuch WHERE id = 1; INSERT INTO users_data (id, data) VALUES (9, 'no')")
        assert cur.fetchall() == ((1,),)
        with pytest.raises(pymysql.MySQLError) as caught:
            cur.nextset()
        assert caught.value.args == (15, "Table doesn't exist")
        cur.execute("SELECT * FROM users_data WHERE id = 9")  # the statement after the error did not run
        assert cur.fetchall() == ()


def test_without_multi_statements_the_last_answer_is_sent(db) -> None:
    db.execute("SELECT 1; SELECT 2 AS b")
    assert db.fetchall() == ((2,),)
    assert not db.nextset()
    db.execute("SELECT 3")
    assert db.fetchall() == ((3,),)


def test_the_mysql_cli_shows_every_result_set(server: ServerProcess, dev: int) -> None:
    script = "DELIMITER //\nSELECT 1 AS first; SELECT 'x' AS second; SELECT 3 AS third//\n"
    out = mysql_cli(Settings.for_dev(server, dev), "--batch", input=script).stdout
    assert out.split() == ["first", "1", "second", "x", "third", "3"]
