"""Node: the mysql2 package, both ways its users pass values.

``.query()`` escapes them into the text (COM_QUERY); ``.execute()`` prepares the
statement on the server once per connection and executes it with binary
parameters, getting binary rows back.
"""

import pytest

from ._contract import ClientContract
from ._run import NODE_MYSQL2_EXECUTE, NODE_MYSQL2_QUERY

pytestmark = pytest.mark.clients


class TestNodeMysql2Query(ClientContract):
    driver = NODE_MYSQL2_QUERY


class TestNodeMysql2Execute(ClientContract):
    driver = NODE_MYSQL2_EXECUTE
