"""PHP mysqli: plain queries, server-side prepared statements (execute_query) and real_escape_string."""

import pytest

from ..servers import ServerProcess
from ._contract import TRICKY, ClientContract
from ._run import PHP_MYSQLI, Settings

pytestmark = pytest.mark.clients


class TestPhpMysqli(ClientContract):
    driver = PHP_MYSQLI

    def test_real_escape_string_output_is_decoded(self, server: ServerProcess, dev: int) -> None:
        """Most PHP backends build SQL with mysqli_real_escape_string; the message must arrive unchanged."""
        sql = "INSERT INTO pipes_settings (name, length) VALUES ('news', 5)"
        publish = "INSERT INTO pipes_messages (name, event, message) VALUES ('news', 'post', ?)"
        plan = [{"sql": sql}, {"sql": publish, "params": [TRICKY], "escape_params": True},
                {"sql": "SELECT name, event, message FROM pipes_messages WHERE name = 'news'"}]
        session = self.driver.session(Settings.for_dev(server, dev), plan)
        settings, published, history = session.results
        assert (settings.error, settings.affected) == (None, 1)
        assert (published.error, published.affected) == (None, 0)
        assert history.rows == [["news", "post", TRICKY]]

    def test_multi_query_answers_every_statement(self, server: ServerProcess, dev: int) -> None:
        """PHP's multi_query (COM_SET_OPTION around it): 100 INSERTs, 100 answers; then every result set."""
        inserts = ";".join(f"INSERT INTO users_data (id, data) VALUES ({i}, 'v{i}')" for i in range(1, 101))
        mixed = "SELECT 1 AS a; SELECT id, data FROM users_data WHERE id IN (1, 2); SELECT * FROM nosuch; SELECT 2"
        plan = [{"sql": inserts, "multi": True}, {"sql": mixed, "multi": True}, {"sql": "SELECT 3 AS c"}]
        session = self.driver.session(Settings.for_dev(server, dev), plan)
        assert session.connect_error is None
        inserted, rest = session.results[:100], session.results[100:]
        assert [(r.error, r.affected) for r in inserted] == [(None, 1)] * 100
        one, two, missing, after = rest
        assert (one.columns, one.rows) == (["a"], [["1"]])
        assert two.rows == [["1", "v1"], ["2", "v2"]]
        assert missing.error is not None and missing.error.code == 15  # the error ends that query ...
        assert (after.columns, after.rows) == (["c"], [["3"]])  # ... and the connection goes on
