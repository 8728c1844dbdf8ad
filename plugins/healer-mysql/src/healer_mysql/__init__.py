"""healer-mysql: teaches Universal Healer to find, diagnose and heal MySQL and MariaDB servers.

The hooks are in :mod:`healer_mysql.plugin` (the ``universal_healer`` entry point); detection
in :mod:`healer_mysql.detection` and everything read from the server in
:mod:`healer_mysql.parsing` are pure; the checks, strategies and backup talk to the server
through the host's own ``mysql`` client (:mod:`healer_mysql.connection`).
"""

STACK_ID = "mysql"
"""The stack this plugin declares; servers are stored as applications of it."""

__all__ = ["STACK_ID"]
