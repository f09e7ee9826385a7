"""PHP PDO with emulated prepares (PDO's default for MySQL): PDO quotes parameters and sends COM_QUERY."""

import pytest

from ._contract import ClientContract
from ._run import PHP_PDO_EMULATED

pytestmark = pytest.mark.clients


class TestPhpPdoEmulatedPrepares(ClientContract):
    driver = PHP_PDO_EMULATED
