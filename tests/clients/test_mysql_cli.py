"""The `mysql` command-line client (MariaDB's), the way shell scripts and operators use it.

Our server advertises no SSL capability, so the plain command line works with no
`--skip-ssl`. The CLI does not show insert ids, so those are checked through the
other drivers; here we check what a shell user sees: tab-separated output, the
"Query OK, N rows affected" lines of `-vvv`, and `ERROR 17 (HY000)` on stderr.
"""

from __future__ import annotations

import pytest

from ..servers import ServerProcess
from ._contract import TABLES
from ._run import Settings, mysql_cli

pytestmark = pytest.mark.clients


@pytest.fixture
def settings(server: ServerProcess, dev: int) -> Settings:
    return Settings.for_dev(server, dev)


def test_execute_option_shows_tables(settings: Settings) -> None:
    out = mysql_cli(settings, "-e", "SHOW TABLES").stdout
    assert out.splitlines() == ["Tables", *TABLES]


def test_batch_without_column_names_is_one_value_per_line(settings: Settings) -> None:
    out = mysql_cli(settings, "--batch", "--skip-column-names", "-e", "SHOW TABLES").stdout
    assert out.splitlines() == TABLES


def test_publish_reports_zero_rows_affected(settings: Settings) -> None:
    out = mysql_cli(settings, "--batch", "-vvv", "-e",
                    "INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'new', 'hello')").stdout
    assert "Query OK, 0 rows affected" in out


def test_piped_script_queues_a_message_and_reads_it_back_decoded(settings: Settings) -> None:
    script = (
        "-- a backend's script, piped into the CLI\n"
        "INSERT INTO users_messages (id, event, message) VALUES (7, 'note', 'it\\'s a \\\\ test');\n"
        "SELECT * FROM users_messages WHERE id = 7;\n"
    )
    out = mysql_cli(settings, "--batch", "--raw", input=script).stdout
    header, row = out.splitlines()
    assert header.split("\t") == ["id", "index", "event", "message"]
    user, uuid, event, message = row.split("\t")
    assert (user, event, message) == ("7", "note", "it's a \\ test")
    assert len(uuid) == 36


def test_piped_script_users_auth_round_trip(settings: Settings) -> None:
    script = (
        "INSERT INTO users_auth (id, hash) VALUES (12, 'secretHash12');\n"
        "SELECT hash FROM users_auth WHERE id = 12;\n"
        "DELETE FROM users_auth WHERE id = 12;\n"
        "SELECT hash FROM users_auth WHERE id = 12;\n"
    )
    out = mysql_cli(settings, "--batch", "-vvv", input=script).stdout
    assert "Query OK, 1 row affected" in out.split("SELECT hash")[0]
    assert out.count("secretHash12") == 2  # in the INSERT echoed by -vvv and in the first SELECT's row
    assert "Empty set" in out.rsplit("SELECT hash", 1)[1]


def test_error_stops_the_script_with_code_17_and_sqlstate(settings: Settings) -> None:
    script = "INSERT INTO pipes_messages (name, event, message) VALUES ('ab', 'new', 'x');\nSHOW TABLES;\n"
    proc = mysql_cli(settings, "--batch", input=script, check=False)
    assert proc.returncode == 1
    # MariaDB's client echoes the failing statement to stderr, then the error line.
    assert proc.stderr.splitlines()[-1] == "ERROR 17 (HY000) at line 1: Channel name is too short"
    assert proc.stdout == ""  # SHOW TABLES never ran


def test_force_continues_on_the_same_connection_after_an_error(settings: Settings) -> None:
    script = (
        "INSERT INTO pipes_messages (name, event, message) VALUES ('ab', 'new', 'x');\n"
        "SHOW TABLES;\n"
    )
    proc = mysql_cli(settings, "--batch", "--force", input=script, check=False)
    assert "ERROR 17 (HY000) at line 1: Channel name is too short" in proc.stderr
    assert proc.stdout.splitlines() == ["Tables", *TABLES]


def test_wrong_password_is_error_1045(server: ServerProcess, dev: int) -> None:
    proc = mysql_cli(Settings.for_dev(server, dev, password="not-the-password"), "-e", "SHOW TABLES", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR 1045 (28000)"), proc.stderr
