"""Backup strategies: what protects an application before a heal changes it.

A plugin returns one from ``healer_get_backup``. The executor takes the backup before any
action of MEDIUM risk or more (or one that asks for it) and refuses the action when the backup
cannot be taken: no backup, no action.
"""

from __future__ import annotations

from typing import ClassVar

from universal_healer.hosts.base import Host
from universal_healer.model import Application

__all__ = ["BackupStrategy"]


class BackupStrategy:
    """Base class of backup strategies.

    :cvar name: unique, stable id of the strategy (``"wordpress_files_and_db"``).
    :cvar includes: human-readable list of what the backup holds, shown in dry runs.
    """

    name: ClassVar[str]
    includes: ClassVar[tuple[str, ...]] = ()

    async def create(self, host: Host, app: Application, destination: str) -> str:
        """Take a backup of ``app`` on ``host`` under ``destination``; return its location."""
        raise NotImplementedError

    async def restore(self, host: Host, app: Application, location: str) -> None:
        """Put ``app`` back exactly as the backup at ``location`` holds it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<backup {self.name}>"
