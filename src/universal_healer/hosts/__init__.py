"""Hosts: the only code that touches a machine."""

from universal_healer.hosts.base import (
    CommandResult,
    DirEntry,
    FileRead,
    FileStat,
    Host,
    HostFacts,
    Listener,
    MountUsage,
    ScannedDir,
    ScanResult,
)
from universal_healer.hosts.local import LocalHost
from universal_healer.hosts.ssh import SSHConfig, SSHHost, TrustedHostKey

__all__ = [
    "CommandResult",
    "DirEntry",
    "FileRead",
    "FileStat",
    "Host",
    "HostFacts",
    "Listener",
    "LocalHost",
    "MountUsage",
    "SSHConfig",
    "SSHHost",
    "ScanResult",
    "ScannedDir",
    "TrustedHostKey",
]
