"""MySQL wire front-end: mysql-mimic connections running as trio tasks."""

from ._options import MysqlOptions
from ._server import MysqlFront
from ._session import CometSession, dev_id_for_login

__all__ = ["CometSession", "MysqlFront", "MysqlOptions", "dev_id_for_login"]
