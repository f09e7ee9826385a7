"""What every MySQL driver must see from CometQL, written once for all of them.

A backend written for CppComet must keep working when only host, port and
password change, whatever driver it uses. Each test module subclasses
``ClientContract`` with its ``driver``; the class name does not start with
``Test``, so pytest collects it only through those subclasses. Each test runs
one driver session (one connection) and asserts on what the driver reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..servers import ServerProcess
from ._browser import browser
from ._run import Driver, Result, Session, Settings, Step, step

TABLES = ["users_auth", "users_time", "users_messages", "pipes_messages", "users_in_pipes", "pipes", "pipes_settings",
          "stats_history"]  # CppComet's seven, then the table CometQL adds
#: Quotes, backslashes, a newline and SQL that would run if a driver's escaping were ignored.
TRICKY = "it's a \\ \"quoted\"\nline'); DELETE FROM users_auth WHERE id IN (1"
#: Must arrive byte for byte: quotes, a backslash, and 2- and 3-byte UTF-8 characters.
UNICODE = "it's \\ \"ok\" — ünïcødé ✓"


class ClientContract:
    driver: ClassVar[Driver]

    def session(self, server: ServerProcess, dev: int, plan: Sequence[Step], *,
                password: str | None = None) -> Session:
        return self.driver.session(Settings.for_dev(server, dev, password=password), plan)

    def results(self, server: ServerProcess, dev: int, *plan: Step) -> list[Result]:
        """Run the plan on one connection, which must log in; one Result per step."""
        session = self.session(server, dev, plan)
        assert session.connect_error is None, session.connect_error
        assert len(session.results) == len(plan)
        return session.results

    def test_login_and_show_tables_in_cppcomet_order(self, server: ServerProcess, dev: int) -> None:
        [tables] = self.results(server, dev, step("SHOW TABLES"))
        assert tables.error is None, tables.error
        assert [row[0] for row in tables.rows or []] == TABLES

    def test_publish_reports_zero_affected_rows(self, server: ServerProcess, dev: int) -> None:
        [publish] = self.results(server, dev, step(
            "INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'new', 'hello')"))
        assert (publish.error, publish.affected, publish.insert_id) == (None, 0, 0)

    def test_message_queued_for_offline_user_is_read_back_decoded(self, server: ServerProcess, dev: int) -> None:
        queue_literal, queue_param, read = self.results(
            server, dev,
            step("INSERT INTO users_messages (id, event, message) VALUES (42, 'note', 'it\\'s a \\\\ ''test''')"),
            step("INSERT INTO users_messages (id, event, message) VALUES (?, ?, ?)", 42, "note", TRICKY),
            step("SELECT * FROM users_messages WHERE id = 42"),
        )
        assert (queue_literal.error, queue_literal.affected, queue_literal.insert_id) == (None, 0, 42)
        assert (queue_param.error, queue_param.affected, queue_param.insert_id) == (None, 0, 42)
        assert read.error is None, read.error
        assert read.columns == ["id", "index", "event", "message"]
        assert [(r[0], r[2], r[3]) for r in read.rows or []] == [("42", "note", "it's a \\ 'test'"),
                                                                 ("42", "note", TRICKY)]
        assert all(isinstance(r[1], str) and len(r[1]) == 36 for r in read.rows or [])  # the message uuid

    def test_publish_reaches_a_browser_byte_exact_and_statistics_count_it(self, server: ServerProcess,
                                                                         dev: int) -> None:
        """What a backend does all day: publish with placeholders, then read who is online."""
        publish = "INSERT INTO pipes_messages (name, event, message) VALUES (?, ?, ?)"
        with browser(server, dev, "drivers") as tab:
            first, second, pipes, members = self.results(
                server, dev,
                step(publish, "drivers", "say", UNICODE),
                step(publish, "drivers", "say", "again"),  # the same statement again (a driver may reuse it)
                step("SELECT name, users FROM pipes WHERE name = ?", "drivers"),
                step("SELECT COUNT(*) FROM users_in_pipes WHERE name = ?", "drivers"),
            )
            frames = [tab.frame("drivers"), tab.frame("drivers")]
        assert (first.error, first.affected, second.error, second.affected) == (None, 0, None, 0)
        assert [(f["event"], f["data"]) for f in frames] == [("say", UNICODE), ("say", "again")]
        assert (pipes.error, pipes.columns, pipes.rows) == (None, ["name", "users"], [["drivers", "1"]])
        assert (members.error, members.rows) == (None, [["1"]])

    def test_unicode_round_trips_byte_exact(self, server: ServerProcess, dev: int) -> None:
        queued, read = self.results(
            server, dev,
            step("INSERT INTO users_messages (id, event, message) VALUES (?, ?, ?)", 43, "note", UNICODE),
            step("SELECT event, message FROM users_messages WHERE id = ?", 43),
        )
        assert (queued.error, queued.affected, queued.insert_id) == (None, 0, 43)
        assert read.error is None, read.error
        assert [[str(v).encode() for v in row] for row in read.rows or []] == [[b"note", UNICODE.encode()]]

    def test_users_auth_round_trip(self, server: ServerProcess, dev: int) -> None:
        insert, found, delete, gone = self.results(
            server, dev,
            step("INSERT INTO users_auth (id, hash) VALUES (12, 'secretHash12')"),
            step("SELECT * FROM users_auth WHERE id = 12"),
            step("DELETE FROM users_auth WHERE id = 12"),
            step("SELECT * FROM users_auth WHERE id = 12"),
        )
        assert (insert.error, insert.affected, insert.insert_id) == (None, 1, 12)
        assert (found.columns, found.rows) == (["id", "hash"], [["12", "secretHash12"]])
        assert (delete.error, delete.affected) == (None, 0)
        assert (gone.error, gone.rows) == (None, [])

    def test_error_code_and_the_connection_keeps_working(self, server: ServerProcess, dev: int) -> None:
        failed, after = self.results(
            server, dev,
            step("INSERT INTO pipes_messages (name, event, message) VALUES ('ab', 'new', 'hello')"),
            step("SHOW TABLES"),
        )
        assert failed.error is not None
        assert (failed.error.code, failed.error.message) == (17, "Channel name is too short")
        if self.driver.exposes_sqlstate:
            assert failed.error.sqlstate == "HY000"
        assert after.error is None and [r[0] for r in after.rows or []] == TABLES

    def test_wrong_password_is_error_1045(self, server: ServerProcess, dev: int) -> None:
        session = self.session(server, dev, [step("SHOW TABLES")], password="not-the-password")
        assert session.connect_error is not None
        assert session.connect_error.code == 1045
        assert session.results == []
