"""Backup strategies: what protects an application before a heal changes it.

A plugin returns a :class:`BackupStrategy` from ``healer_get_backup``. The executor takes the
backup before any action of MEDIUM risk or more (or one that asks for it) and refuses the action
when the backup cannot be taken: no backup, no action. When the action fails, the executor
restores the backup, and the restore checks its own result.

Everything happens on the target host, through :class:`~universal_healer.hosts.base.Host`
argument vectors, so a strategy works the same on this machine and over SSH. Data (paths,
names) only ever travels as arguments or on stdin, never inside a shell string.

The building blocks:

:class:`FileSetBackup`
    A GNU tar archive of some paths of the application, a sha256 manifest of every regular
    file and a manifest of every entry's type, mode, owner and symlink target. Both manifests
    are derived from the archive itself, so they agree with it even when the application wrote
    to its files while they were archived. A restore extracts next to the application, checks
    every entry against the manifests before it touches anything, swaps each path in with a
    rename, removes paths that did not exist at backup time, and checks the result again.
:class:`MySQLDumpBackup`
    A ``mysqldump`` of one database (one transaction, so consistent for InnoDB) with the row
    count and ``CHECKSUM TABLE`` of every table; the password lives only in a private option
    file. A restore re-creates the database from the dump and compares the checksums.
:class:`CompositeBackup`
    Several strategies as one (files and database of a WordPress site, say).

An artifact is a directory under the destination that holds all of a backup's files (0700, its
files 0600). It is built under a hidden ``.NAME-partial-*`` name and renamed into place only when
complete, so a backup that fails leaves nothing behind, and one that exists is whole.
:func:`select_for_pruning` is the pure retention policy.
"""

from universal_healer._mysql import MySQLCredentials
from universal_healer.backup._base import BackupStrategy
from universal_healer.backup._composite import CompositeBackup
from universal_healer.backup._fileset import FileSetBackup
from universal_healer.backup._mysqldump import MySQLDumpBackup
from universal_healer.backup._retention import select_for_pruning

__all__ = [
    "BackupStrategy",
    "CompositeBackup",
    "FileSetBackup",
    "MySQLCredentials",
    "MySQLDumpBackup",
    "select_for_pruning",
]
