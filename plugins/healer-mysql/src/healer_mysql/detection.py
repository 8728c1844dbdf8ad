"""Recognising a MySQL or MariaDB server from a directory, without I/O.

A database server is host-level, not a directory of application files, so it is found where it
keeps its state: its **data directory** (``/var/lib/mysql``: ``ibdata1``, ``aria_log_control``,
``mysql_upgrade_info`` beside the ``mysql/`` system schema) or its **configuration directory**
(``/etc/mysql`` with ``my.cnf``). Both are ordinary candidate roots for discovery::

    healer discover /var/lib/mysql /etc/mysql

The version comes from ``mysql_upgrade_info`` (``mariadb-upgrade``/``mysql_upgrade`` write the
server version there); a configuration directory does not say it, and the
``mysql_version_uptime`` check asks the server.

A **running server** is found from the host's facts (:func:`detect_services`): a ``mariadbd`` or
``mysqld`` process, a TCP listener on 3306, a unix socket ending in ``mysqld.sock`` or
``mysql.sock``. It is an application at the conventional data directory ``/var/lib/mysql``, so
it merges with that directory's detection when discovery scans it too.
"""

from __future__ import annotations

from collections.abc import Sequence

from universal_healer.hosts.base import HostFacts
from universal_healer.model import Detection, ProbeFile, SiteProbe

from healer_mysql import STACK_ID
from healer_mysql.parsing import (
    SERVER_SECTIONS,
    parse_option_file,
    server_option,
    upgrade_info_version,
)

__all__ = [
    "CONFIG_MARKER",
    "DATADIR_MARKERS",
    "SERVER_PROCESSES",
    "SERVICE_ROOT",
    "detect",
    "detect_services",
    "probe_files",
]

DATADIR_MARKERS = ("mysql_upgrade_info", "aria_log_control", "ibdata1")
"""Files only a server's data directory holds."""

CONFIG_MARKER = "my.cnf"
"""The server's main option file, in its configuration directory (``/etc/mysql``, ``/etc``)."""

SERVICE_ROOT = "/var/lib/mysql"
"""Where a server found running is recorded: the conventional data directory."""

SERVER_PROCESSES = ("mariadbd", "mysqld")
"""Process names (``comm``) of the server itself, MariaDB's and MySQL's."""

_SERVER_PORT = 3306
_SOCKET_NAMES = ("mysqld.sock", "mysql.sock")

_CONFIG_BYTES = 64 * 1024
_DEBIAN_LAYOUT = ("conf.d", "mariadb.conf.d", "mysql.conf.d")


def probe_files() -> Sequence[ProbeFile]:
    """Every marker; only the version file and the option file are read for their content
    (``aria_log_control`` and ``ibdata1`` just a few bytes: being there is what counts)."""
    return [
        ProbeFile(path="mysql_upgrade_info", marker=True, max_bytes=256),
        ProbeFile(path="aria_log_control", marker=True, max_bytes=64),
        ProbeFile(path="ibdata1", marker=True, max_bytes=16),
        ProbeFile(path=CONFIG_MARKER, marker=True, max_bytes=_CONFIG_BYTES),
    ]


def detect(probe: SiteProbe) -> Detection | None:
    """A data directory (0.9 beside the ``mysql`` system schema, 0.5 without it) or a server
    configuration directory (0.8 in Debian's layout, 0.7 otherwise); None for anything else,
    including a ``my.cnf`` that only configures clients."""
    markers = [name for name in DATADIR_MARKERS if probe.has_file(name)]
    if markers:
        return _datadir(probe, markers)
    if probe.has_file(CONFIG_MARKER):
        return _config_dir(probe)
    return None


def _datadir(probe: SiteProbe, markers: list[str]) -> Detection:
    evidence = [f"a MySQL/MariaDB data directory: has {', '.join(markers)}"]
    if probe.has_dir("mysql"):
        confidence = 0.9
        evidence.append("holds the server's own mysql/ schema")
    else:
        confidence = 0.5
        evidence.append("no mysql/ system schema beside it: perhaps a copy, not a live datadir")
    version = None
    upgrade_info = probe.file("mysql_upgrade_info")
    if upgrade_info is not None and upgrade_info.data is not None:
        version = upgrade_info_version(upgrade_info.data)
        if version is None:
            evidence.append("mysql_upgrade_info holds no version")
        else:
            evidence.append(
                f"version {version.raw} ({version.flavour}) from mysql_upgrade_info, written "
                "by the last mysql_upgrade/mariadb-upgrade"
            )
    elif upgrade_info is not None and upgrade_info.exists:
        evidence.append(f"mysql_upgrade_info unreadable: {upgrade_info.error}")
    if version is None:
        if "aria_log_control" in markers:
            evidence.append("aria_log_control: a MariaDB server")
        if probe.has_file("mysql.ibd"):
            evidence.append("mysql.ibd: a MySQL 8 server")
        evidence.append("version unknown here; the mysql_version_uptime check asks the server")
    return Detection(
        stack=STACK_ID,
        version=version.raw if version else None,
        confidence=confidence,
        evidence=tuple(evidence),
    )


def _config_dir(probe: SiteProbe) -> Detection | None:
    layout = [name for name in _DEBIAN_LAYOUT if probe.has_dir(name)]
    layout += [name for name in ("debian.cnf", "mariadb.cnf") if probe.has_file(name)]
    read = probe.file(CONFIG_MARKER)
    text = probe.text(CONFIG_MARKER)
    sections = parse_option_file(text) if text is not None else {}
    server = [name for name in SERVER_SECTIONS if name in sections]
    includes = sections.get("!include", {})
    if not server and not includes and not layout:
        return None  # a client's option file: it configures no server
    evidence = ["a MySQL/MariaDB configuration directory: has my.cnf"]
    if read is not None and read.data is None:
        evidence.append(f"my.cnf unreadable: {read.error}")
    elif read is not None and read.truncated:
        evidence.append(f"my.cnf larger than {_CONFIG_BYTES} bytes: read only its beginning")
    if server:
        evidence.append(f"my.cnf configures the server (sections {', '.join(server)})")
    if includes:
        evidence.append(f"my.cnf includes {', '.join(sorted(includes))}")
    if layout:
        evidence.append(f"Debian's layout: {', '.join(layout)}")
    if "mariadb.cnf" in layout or "mariadb.conf.d" in layout:
        evidence.append("mariadb.cnf/mariadb.conf.d: a MariaDB server")
    for option in ("datadir", "socket", "port"):
        value = server_option(sections, option)
        if value:
            evidence.append(f"my.cnf sets {option} = {value}")
    evidence.append(
        "the version is not in the configuration; the mysql_version_uptime check asks the server"
    )
    return Detection(
        stack=STACK_ID,
        version=None,
        confidence=0.8 if layout else 0.7,
        evidence=tuple(evidence),
    )


def detect_services(facts: HostFacts) -> list[Detection]:
    """A running server: 0.9 with both its process and a listener (TCP 3306 or its unix socket),
    0.8 with one of them; nothing otherwise. Its root is :data:`SERVICE_ROOT`; the version is
    not in the facts (the ``mysql_version_uptime`` check asks the server)."""
    processes = [name for name in SERVER_PROCESSES if name in facts.processes]
    listeners = [
        f"TCP {listener.address}:{listener.port}"
        for listener in facts.listeners
        if listener.kind == "tcp" and listener.port == _SERVER_PORT
    ]
    listeners += [
        f"unix socket {listener.path}"
        for listener in facts.listeners
        if listener.kind == "unix" and (listener.path or "").endswith(_SOCKET_NAMES)
    ]
    if not processes and not listeners:
        return []
    evidence = []
    if processes:
        evidence.append(f"a MySQL/MariaDB server process is running: {', '.join(processes)}")
    if listeners:
        evidence.append(f"listening on {', '.join(listeners)}")
    if "mariadbd" in processes:
        evidence.append("mariadbd: a MariaDB server")
    evidence.append(
        f"a host service, recorded at the conventional data directory {SERVICE_ROOT}; "
        "the mysql_version_uptime check asks the server its version"
    )
    return [
        Detection(
            stack=STACK_ID,
            version=None,
            confidence=0.9 if processes and listeners else 0.8,
            evidence=tuple(evidence),
            root=SERVICE_ROOT,
        )
    ]
