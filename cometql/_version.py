"""The one place the CometQL version lives."""

__version__ = "0.1.0"

#: Advertised in the MySQL greeting. It starts with a MySQL version number
#: because drivers (PyMySQL, JDBC, ...) parse it to pick features.
SERVER_VERSION = f"5.7.99-CometQL-{__version__}"
VERSION_COMMENT = f"CometQL {__version__} (CppComet-compatible comet server)"
