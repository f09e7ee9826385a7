"""Java: JDBC with MariaDB Connector/J (Debian's libmariadb-java), compiled once per run.

Connector/J could not log in before CometQL sent 0 affected rows in the packet
that ends a result set (its own login query reads a row). Its PreparedStatement
escapes parameters itself and sends COM_QUERY, its default.
"""

import pytest

from ._compiled import JAVA_MARIADB
from ._contract import ClientContract

pytestmark = pytest.mark.clients


class TestMariadbConnectorJ(ClientContract):
    driver = JAVA_MARIADB
