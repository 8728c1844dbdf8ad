"""Value objects and enums that cross module and plugin boundaries.

Every value here is ``@attrs.frozen(kw_only=True)`` with tuples for collections: adding a field
with a default never breaks a plugin that builds one. Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import attrs

from universal_healer.hosts.base import Host

__all__ = [
    "Application",
    "CallableStep",
    "CheckCategory",
    "CheckResult",
    "CheckStatus",
    "CommandStep",
    "Detection",
    "DetectionMethod",
    "HealingAction",
    "HealingMode",
    "HealingPlan",
    "HealthStatus",
    "JsonRead",
    "PlannedAction",
    "ProbeFile",
    "ProbedFile",
    "RiskLevel",
    "SiteProbe",
    "StackInfo",
    "StackKind",
    "Step",
    "Unhealable",
    "utcnow",
]


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime (the only clock the model layer knows)."""
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------------------------
# Enums (the plan's section 3)


class CheckCategory(enum.StrEnum):
    """What part of an application a check looks at."""

    SYSTEM = "SYSTEM"
    SECURITY = "SECURITY"
    PERFORMANCE = "PERFORMANCE"
    CONFIGURATION = "CONFIGURATION"
    DEPENDENCIES = "DEPENDENCIES"
    DATABASE = "DATABASE"


class CheckStatus(enum.StrEnum):
    """The verdict of one check: PASS, WARN, FAIL, or ERROR when the check itself broke."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    ERROR = "ERROR"


class RiskLevel(enum.StrEnum):
    """How much harm a finding signals, or an action could do. Ordered LOW < CRITICAL."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """0 for LOW up to 3 for CRITICAL, for comparisons."""
        return _RISK_ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, RiskLevel):
            return NotImplemented
        return self.rank >= other.rank


_RISK_ORDER = (RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.CRITICAL)


class HealingMode(enum.StrEnum):
    """How much the healer may do on its own for one application."""

    MANUAL = "MANUAL"  # heal nothing without an approval
    SUPERVISED = "SUPERVISED"  # auto-heal LOW-risk actions
    AUTO = "AUTO"  # auto-heal LOW and MEDIUM-risk actions


class HealthStatus(enum.StrEnum):
    """An application's overall health, derived from its latest diagnosis."""

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"


class DetectionMethod(enum.StrEnum):
    """How an application's stack was decided.

    AUTO: by detection. MANUAL: an operator pinned stack and version. HYBRID: an operator
    pinned the stack; detection still fills in the version.
    """

    AUTO = "AUTO"
    MANUAL = "MANUAL"
    HYBRID = "HYBRID"


class StackKind(enum.StrEnum):
    """What sort of thing a stack is."""

    APP = "app"
    DATABASE = "database"
    SERVICE = "service"


# --------------------------------------------------------------------------------------------
# Validators


def _unit_interval(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _stack_id(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value or not value.replace("-", "").replace("_", "").isalnum() or not value.islower():
        raise ValueError(
            f"{attribute.name} must be a lowercase id of letters, digits, '-' and '_'; "
            f"got {value!r}"
        )


def _relative_path(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    parts = value.split("/")
    if not value or value.startswith("/") or ".." in parts or "" in parts:
        raise ValueError(f"{attribute.name} must be a plain relative path, got {value!r}")


def _aware(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, dt.datetime) and value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


def _argv(_: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value or not all(isinstance(part, str) for part in value):
        raise ValueError(f"{attribute.name} must be a non-empty tuple of strings")


# Typed converters: a bare ``tuple``/``frozenset`` converter leaves mypy unable to solve the
# element type for callers.


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _probed_files(value: Iterable[ProbedFile]) -> tuple[ProbedFile, ...]:
    return tuple(value)


def _steps(value: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(value)


def _planned(value: Iterable[PlannedAction]) -> tuple[PlannedAction, ...]:
    return tuple(value)


def _unhealable(value: Iterable[Unhealable]) -> tuple[Unhealable, ...]:
    return tuple(value)


# --------------------------------------------------------------------------------------------
# Stacks and detection


@attrs.frozen(kw_only=True)
class StackInfo:
    """A technology stack, declared by a plugin through ``healer_stacks``.

    :param id: lowercase identifier stored in the registry (``"wordpress"``).
    :param display_name: what people read (``"WordPress"``).
    :param kind: app, database or service.
    :param parent: the stack this one refines (``"nodejs"`` for ``"nextjs"``); an application
        of the child also gets its parent's checks.
    :param secret_files: root-relative files that hold credentials and must not be readable by
        other users (``"wp-config.php"``, ``".env"``).
    """

    id: str = attrs.field(validator=_stack_id)
    display_name: str
    kind: StackKind = StackKind.APP
    parent: str | None = attrs.field(default=None)
    secret_files: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    description: str = ""

    @parent.validator
    def _parent_differs(self, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None:
            _stack_id(self, attribute, value)
            if value == self.id:
                raise ValueError(f"stack {self.id!r} cannot be its own parent")


@attrs.frozen(kw_only=True)
class ProbeFile:
    """A file a plugin needs read from every candidate application root.

    :param path: relative to the candidate root (``"wp-includes/version.php"``).
    :param marker: when True, a directory holding this file is a candidate root. Only plain
        names (no ``/``) can be markers.
    :param max_bytes: read at most this much; a longer file is read truncated and says so.
    """

    path: str = attrs.field(validator=_relative_path)
    marker: bool = False
    max_bytes: int = 256 * 1024

    def __attrs_post_init__(self) -> None:
        if self.marker and "/" in self.path:
            raise ValueError(f"a marker must be a plain file name, got {self.path!r}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")


@attrs.frozen(kw_only=True)
class ProbedFile:
    """What came back from reading one probe file.

    ``data`` is None when the file is missing or unreadable; ``error`` then says why
    (``"missing"`` for a file that is simply not there).
    """

    path: str
    data: bytes | None = None
    size: int | None = None
    truncated: bool = False
    error: str | None = None

    @property
    def exists(self) -> bool:
        """Whether the file is there (even if it could not be read)."""
        return self.error != "missing"


@attrs.frozen(kw_only=True)
class JsonRead:
    """A JSON document read from a probe, or the reason it could not be."""

    value: Any = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file parsed."""
        return self.problem is None


@attrs.frozen(kw_only=True)
class SiteProbe:
    """Everything known about one candidate application root, gathered before detection.

    Detection hooks receive this and must not do I/O: everything they may look at is here.

    :param host: the host's name.
    :param root: absolute path of the candidate root.
    :param entries: names in the root directory; directories end with ``/``.
    :param files: the probe files that were asked for, read or not.
    """

    host: str
    root: str
    entries: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    files: tuple[ProbedFile, ...] = attrs.field(default=(), converter=_probed_files)

    def has_file(self, name: str) -> bool:
        """Whether ``name`` is a file (or link) directly in the root."""
        return name in self.entries

    def has_dir(self, name: str) -> bool:
        """Whether ``name`` is a directory directly in the root."""
        return f"{name}/" in self.entries

    def file(self, path: str) -> ProbedFile | None:
        """The probe file at ``path``, or None if nobody asked for it."""
        for probed in self.files:
            if probed.path == path:
                return probed
        return None

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists: a root entry, or a probe file that was found."""
        if path in self.entries or f"{path}/" in self.entries:
            return True
        probed = self.file(path)
        return probed is not None and probed.exists

    def text(self, path: str) -> str | None:
        """The file decoded as UTF-8 (bad bytes replaced), or None when not read."""
        probed = self.file(path)
        if probed is None or probed.data is None:
            return None
        return probed.data.decode("utf-8", errors="replace")

    def json(self, path: str) -> JsonRead:
        """The file parsed as JSON, or the problem that stopped it (never raises)."""
        probed = self.file(path)
        if probed is None or probed.data is None:
            reason = "not probed" if probed is None else (probed.error or "unreadable")
            return JsonRead(problem=f"{path}: {reason}")
        if probed.truncated:
            return JsonRead(problem=f"{path}: larger than {len(probed.data)} bytes, not parsed")
        try:
            text = probed.data.decode("utf-8")
        except UnicodeDecodeError as err:
            return JsonRead(problem=f"{path}: not UTF-8 text ({err.reason} at byte {err.start})")
        try:
            return JsonRead(value=json.loads(text))
        except json.JSONDecodeError as err:
            return JsonRead(problem=f"{path}: invalid JSON ({err.msg} at line {err.lineno})")
        except RecursionError:
            return JsonRead(problem=f"{path}: JSON nested too deeply")


@attrs.frozen(kw_only=True)
class Detection:
    """One plugin's opinion that a probe is an application of a given stack.

    :param stack: the stack id.
    :param version: the stack's version when it can be told (``"6.4.2"``).
    :param confidence: 0 to 1.
    :param evidence: short sentences saying why (and what was odd).
    :param claims: root-relative directories this application owns: a candidate root found
        inside one of them is part of this app (a theme's build tooling), not an app of its own.
    :param root: for a host service (``healer_detect_services``), the application root it is
        known by: the service's canonical directory (``/var/lib/mysql``). None from ``detect``,
        whose root is the probe's.
    :param plugin: filled in by the engine with the name of the plugin that answered.
    """

    stack: str = attrs.field(validator=_stack_id)
    version: str | None = None
    confidence: float = attrs.field(validator=_unit_interval)
    evidence: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    claims: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    root: str | None = None
    plugin: str | None = None


# --------------------------------------------------------------------------------------------
# Applications and diagnosis


@attrs.frozen(kw_only=True)
class Application:
    """An application known to the registry.

    ``path`` is a ``str`` that may carry non-UTF-8 bytes as surrogate escapes (``os.fsdecode``).
    """

    id: str
    server: str
    path: str
    stack: str
    stack_version: str | None = None
    domain: str | None = None
    detection_method: DetectionMethod = DetectionMethod.AUTO
    confidence: float = attrs.field(default=0.0, validator=_unit_interval)
    evidence: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    health_status: HealthStatus = HealthStatus.UNKNOWN
    health_score: int = 0
    last_health_check: dt.datetime | None = attrs.field(default=None, validator=_aware)
    healing_mode: HealingMode = HealingMode.MANUAL
    healer_enabled: bool = False
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def display_path(self) -> str:
        """The path with any undecodable bytes shown as ``\\xNN`` escapes."""
        return os.fsencode(self.path).decode("utf-8", errors="backslashreplace")


@attrs.frozen(kw_only=True)
class CheckResult:
    """The outcome of one diagnostic check on one application.

    :param execution_time_ms: filled in by the runner; checks leave it at 0.
    """

    check: str
    category: CheckCategory
    status: CheckStatus
    severity: RiskLevel
    message: str
    details: Mapping[str, Any] = attrs.field(factory=dict)
    suggested_fix: str | None = None
    execution_time_ms: int = attrs.field(default=0, validator=_non_negative)


# --------------------------------------------------------------------------------------------
# Healing


@attrs.frozen(kw_only=True)
class CommandStep:
    """One command of a healing action, as an argument vector (never a shell string)."""

    argv: tuple[str, ...] = attrs.field(converter=_strings, validator=_argv)
    description: str = ""
    timeout: float = 120.0
    cwd: str | None = None


@attrs.frozen(kw_only=True, eq=False)
class CallableStep:
    """A step a command cannot express (talking to a database driver, editing a file with
    care). ``run(host, app)`` does the work through the host and returns a short, secret-free
    account of what it did; raising fails the step.
    """

    description: str
    run: Callable[[Host, Application], Awaitable[str]] = attrs.field(repr=False)
    timeout: float = 120.0


Step = CommandStep | CallableStep


@attrs.frozen(kw_only=True)
class HealingAction:
    """What a strategy proposes to do about one finding.

    :param name: stable id of the action (``"clear_cache"``); approvals name it.
    :param risk: the action's own risk, which policy decides on (not the finding's severity).
    :param check: the check whose finding this action answers.
    :param requires_backup: take the app's backup first even when the risk alone would not.
    :param verify_checks: checks that must pass afterwards; empty means the triggering check.
    :param touches: root-relative paths the steps change; when the stack has no backup
        strategy, a file-set backup of exactly these protects the action.
    :param changes_data: False for an action that leaves every stored byte as it was (killing
        a runaway query, restarting a service, rebuilding a table's layout). A backup could only
        undo writes made since it was taken, so none is taken unless ``requires_backup``, and a
        failed verification ends FAILED rather than restoring anything.
    """

    name: str
    description: str
    risk: RiskLevel
    check: str
    steps: tuple[Step, ...] = attrs.field(default=(), converter=_steps)
    requires_backup: bool = False
    estimated_duration_s: float = attrs.field(default=30.0, validator=_non_negative)
    verify_checks: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    touches: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    changes_data: bool = True

    @property
    def checks_to_verify(self) -> tuple[str, ...]:
        """The checks re-run after the steps: ``verify_checks`` or the triggering check."""
        return self.verify_checks or (self.check,)

    def fingerprint(self, finding: CheckResult) -> str:
        """A digest binding this exact action to the finding it answers.

        Covers the action's name, risk and every step (argument vectors included) and the
        finding's check, status and severity; an approval given for one fingerprint does not
        apply when any of them changed. The finding's message is left out: it carries
        measurements (a load average) that change from one diagnosis to the next.
        """
        steps = [
            {"argv": list(step.argv), "cwd": step.cwd}
            if isinstance(step, CommandStep)
            else {"callable": step.description}
            for step in self.steps
        ]
        payload = {
            "action": self.name,
            "risk": self.risk.value,
            "steps": steps,
            "check": finding.check,
            "status": finding.status.value,
            "severity": finding.severity.value,
        }
        canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()


@attrs.frozen(kw_only=True)
class PlannedAction:
    """A finding paired with the action proposed for it, and why it was sorted where it is."""

    result: CheckResult
    action: HealingAction
    reason: str


@attrs.frozen(kw_only=True)
class Unhealable:
    """A finding nothing can heal automatically, and why."""

    result: CheckResult
    reason: str


@attrs.frozen(kw_only=True)
class HealingPlan:
    """A diagnosis sorted into what may run now, what waits for a person, and what cannot heal."""

    auto: tuple[PlannedAction, ...] = attrs.field(default=(), converter=_planned)
    needs_approval: tuple[PlannedAction, ...] = attrs.field(default=(), converter=_planned)
    cannot_heal: tuple[Unhealable, ...] = attrs.field(default=(), converter=_unhealable)

    @property
    def empty(self) -> bool:
        """True when there is nothing to heal or report."""
        return not (self.auto or self.needs_approval or self.cannot_heal)
