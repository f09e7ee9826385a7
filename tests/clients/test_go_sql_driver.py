"""Go: database/sql with go-sql-driver/mysql (Debian's package), built once per run without modules.

Its default for a statement with arguments is a server-side prepared statement
(COM_STMT_PREPARE, COM_STMT_EXECUTE with binary parameters and rows, COM_STMT_CLOSE).
"""

import pytest

from ._compiled import GO_SQL_DRIVER
from ._contract import ClientContract

pytestmark = pytest.mark.clients


class TestGoSqlDriver(ClientContract):
    driver = GO_SQL_DRIVER
