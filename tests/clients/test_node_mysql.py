"""Node's `mysql` package (mysqljs), the driver CppComet's own coverage suite uses."""

import pytest

from ._contract import ClientContract
from ._run import NODE_MYSQL

pytestmark = pytest.mark.clients


class TestNodeMysql(ClientContract):
    driver = NODE_MYSQL
