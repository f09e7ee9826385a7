"""Perl: DBI with DBD::MariaDB and with DBD::mysql (Debian's packages), ``?`` placeholders filled in by the driver."""

import pytest

from ._contract import ClientContract
from ._run import PERL_DBD_MARIADB, PERL_DBD_MYSQL

pytestmark = pytest.mark.clients


class TestPerlDbdMariadb(ClientContract):
    driver = PERL_DBD_MARIADB


class TestPerlDbdMysql(ClientContract):
    driver = PERL_DBD_MYSQL
