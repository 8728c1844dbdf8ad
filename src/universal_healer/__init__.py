"""Universal Healer: find the web applications on your servers, recognise their stack,
diagnose them and heal what is safe to heal.

This module re-exports the public API and does nothing at import: no plugin loading, no
database, no metrics registry. Start with :func:`build_plugin_manager`, :func:`discover` and
:func:`diagnose`; plugin authors need :data:`hookimpl` and the value objects.
"""

from universal_healer import breaker, policy
from universal_healer.backup import BackupStrategy
from universal_healer.breaker import BreakerPolicy, BreakerState, BreakerStatus, Outcome
from universal_healer.checks import (
    CheckContext,
    DiagnosticCheck,
    HostQuery,
    HostRun,
    run_checks,
)
from universal_healer.detection import DetectionOutcome, Override
from universal_healer.diagnosis import Diagnosis, diagnose
from universal_healer.discovery import DiscoveredApp, DiscoveryReport, discover
from universal_healer.exceptions import (
    ApplicationNotFoundError,
    AuthenticationError,
    BackupError,
    BreakerOpenError,
    CommandFailedError,
    CommandTimeoutError,
    ConfigurationError,
    HealerError,
    HostUnreachableError,
    PluginError,
    RegistryError,
    RemoteError,
    StrategyError,
)
from universal_healer.hookspecs import PROJECT_NAME, hookimpl
from universal_healer.hosts import Host, HostFacts, LocalHost
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    CommandStep,
    Detection,
    DetectionMethod,
    HealingAction,
    HealingMode,
    HealingPlan,
    HealthStatus,
    ProbeFile,
    RiskLevel,
    SiteProbe,
    StackInfo,
    StackKind,
)
from universal_healer.plugins import PluginManager, build_plugin_manager
from universal_healer.policy import can_auto_heal, health_score, health_status, plan_healing
from universal_healer.registry import Registry, open_registry
from universal_healer.strategies import HealingStrategy

__all__ = [
    "PROJECT_NAME",
    "Application",
    "ApplicationNotFoundError",
    "AuthenticationError",
    "BackupError",
    "BackupStrategy",
    "BreakerOpenError",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatus",
    "CheckCategory",
    "CheckContext",
    "CheckResult",
    "CheckStatus",
    "CommandFailedError",
    "CommandStep",
    "CommandTimeoutError",
    "ConfigurationError",
    "Detection",
    "DetectionMethod",
    "DetectionOutcome",
    "Diagnosis",
    "DiagnosticCheck",
    "DiscoveredApp",
    "DiscoveryReport",
    "HealerError",
    "HealingAction",
    "HealingMode",
    "HealingPlan",
    "HealingStrategy",
    "HealthStatus",
    "Host",
    "HostFacts",
    "HostQuery",
    "HostRun",
    "HostUnreachableError",
    "LocalHost",
    "Outcome",
    "Override",
    "PluginError",
    "PluginManager",
    "ProbeFile",
    "Registry",
    "RegistryError",
    "RemoteError",
    "RiskLevel",
    "SiteProbe",
    "StackInfo",
    "StackKind",
    "StrategyError",
    "breaker",
    "build_plugin_manager",
    "can_auto_heal",
    "diagnose",
    "discover",
    "health_score",
    "health_status",
    "hookimpl",
    "open_registry",
    "plan_healing",
    "policy",
    "run_checks",
]
