"""The server answers a real driver: login, SHOW TABLES, a publish, an error."""

import pymysql
import pytest


def test_login_show_tables_publish_and_error(db, query):
    assert [r[0] for r in query("SHOW TABLES")] == [
        "users_auth", "users_time", "users_messages", "pipes_messages", "users_in_pipes", "pipes", "pipes_settings",
        "stats_history",
    ]
    assert db.execute("INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'new', 'hi')") == 0
    with pytest.raises(pymysql.MySQLError) as err:
        db.execute("SELECT * FROM nosuch WHERE id = 1")
    assert err.value.args == (15, "Table doesn't exist")
    assert query("SELECT 1") == [(1,)]  # the connection is still usable after an error
