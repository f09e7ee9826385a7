"""Ruby: the mysql2 gem (Debian's ruby-mysql2), values escaped with its own ``client.escape``."""

import pytest

from ._contract import ClientContract
from ._run import RUBY_MYSQL2

pytestmark = pytest.mark.clients


class TestRubyMysql2(ClientContract):
    driver = RUBY_MYSQL2
