"""PyMySQL, the usual Python driver: it parses the server version and cannot connect to CppComet at all."""

import pytest

from ._contract import ClientContract
from ._dbapi import PYMYSQL

pytestmark = pytest.mark.clients


class TestPyMySQL(ClientContract):
    driver = PYMYSQL
