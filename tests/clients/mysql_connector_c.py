"""mysql-connector-python with its C extension, in a process of its own (``python -m tests.clients.mysql_connector_c``).

The C extension of the PyPI wheel links the OpenSSL it ships (3.2+); once Python's
``ssl`` module has loaded Debian's older libssl (PyMySQL, the test process, any
program that imported ``ssl`` first), the extension cannot load and
``mysql.connector.connect()`` quietly falls back to the pure-Python protocol. So the
extension is imported before anything else here, and the driver asserts it got a
``CMySQLConnection``. COMETQL_CONNECTOR_CURSOR: ``default`` or ``prepared``;
``--serve``: one request per line (see _served.py).
"""

import _mysql_connector  # noqa: F401, I001  (first: see above)

import os
import sys

from tests.clients._dbapi import main

if __name__ == "__main__":
    main(os.environ.get("COMETQL_CONNECTOR_CURSOR", "default"), serve="--serve" in sys.argv[1:])
