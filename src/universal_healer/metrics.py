"""Prometheus metrics, named after the plan's list.

Nothing is created at import: :func:`default_metrics` builds one :class:`Metrics` on first use,
on a registry of its own so that embedding the SDK never pollutes the host program's default
registry. The daemon serves ``Metrics.registry``.
"""

from __future__ import annotations

import functools

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Metrics", "default_metrics"]


@attrs.frozen(kw_only=True)
class Metrics:
    """The healer's metrics on one registry."""

    registry: CollectorRegistry
    diagnostics_total: Counter
    diagnostics_duration_seconds: Histogram
    checks_total: Counter
    healing_attempts_total: Counter
    circuit_breaker_trips_total: Counter
    plugin_errors_total: Counter
    discovered_applications_total: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Metrics on ``registry`` (a new one by default)."""
        reg = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=reg,
            diagnostics_total=Counter(
                "healer_diagnostics_total",
                "Application diagnoses run, by stack and resulting health status.",
                ["stack", "health_status"],
                registry=reg,
            ),
            diagnostics_duration_seconds=Histogram(
                "healer_diagnostics_duration_seconds",
                "Wall time of one application's diagnosis.",
                ["stack"],
                registry=reg,
            ),
            checks_total=Counter(
                "healer_checks_total",
                "Check results, by check and status.",
                ["check", "status"],
                registry=reg,
            ),
            healing_attempts_total=Counter(
                "healer_healing_attempts_total",
                "Healing actions attempted, by stack, action and outcome.",
                ["stack", "action", "outcome"],
                registry=reg,
            ),
            circuit_breaker_trips_total=Counter(
                "healer_circuit_breaker_trips_total",
                "Times an application's circuit breaker opened.",
                ["stack"],
                registry=reg,
            ),
            plugin_errors_total=Counter(
                "healer_plugin_errors_total",
                "Plugin failures (import or hook), by plugin and hook.",
                ["plugin", "hook"],
                registry=reg,
            ),
            discovered_applications_total=Counter(
                "healer_discovered_applications_total",
                "Applications found by discovery, by stack.",
                ["stack"],
                registry=reg,
            ),
        )


@functools.cache
def default_metrics() -> Metrics:
    """The process-wide metrics, created on first use."""
    return Metrics.create()
