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
