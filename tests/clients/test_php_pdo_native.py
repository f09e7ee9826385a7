"""PHP PDO with PDO::ATTR_EMULATE_PREPARES=false: every statement is COM_STMT_PREPARE + COM_STMT_EXECUTE.

CppComet answered COM_STMT_PREPARE with an EOF packet, so this mode never worked
there; here parameters arrive in binary and must be spliced in as escaped literals.
"""

import pytest

from ._contract import ClientContract
from ._run import PHP_PDO_NATIVE

pytestmark = pytest.mark.clients


class TestPhpPdoNativePrepares(ClientContract):
    driver = PHP_PDO_NATIVE
