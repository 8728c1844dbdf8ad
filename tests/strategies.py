"""Hypothesis strategies for the whole suite: the one place that knows how to generate values.

Each strategy is a function returning a ``SearchStrategy``, so a test can pin what it cares about
(``check_results(status=st.just(CheckStatus.FAIL))``). Add new ones here, under a heading for the
module they serve, rather than in a test module.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from universal_healer.breaker import BreakerPolicy, BreakerState, BreakerStatus, Outcome
from universal_healer.builtin import signatures
from universal_healer.executions import (
    Approval,
    ApprovalStatus,
    BackupRecord,
    Execution,
    ExecutionStatus,
    StepRecord,
)
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    CommandStep,
    Detection,
    HealingAction,
    HealingMode,
    ProbedFile,
    RiskLevel,
    SiteProbe,
)
from universal_healer.testing import make_probe

__all__ = [
    "applications",
    "approvals",
    "aware_datetimes",
    "backup_ids",
    "backup_records",
    "breaker_policies",
    "breaker_states",
    "check_categories",
    "check_names",
    "check_results",
    "check_statuses",
    "clock_nudges",
    "command_steps",
    "cooldown_thousandths",
    "detection_lists",
    "diagnoses",
    "executions",
    "findings",
    "healing_actions",
    "healing_modes",
    "legacy_executions",
    "legacy_paths",
    "legacy_sites",
    "legacy_timestamps",
    "outcomes",
    "risk_levels",
    "root_records",
    "site_probes",
    "step_records",
    "storable_texts",
    "time_advances",
    "utc_datetimes",
]

# --------------------------------------------------------------------------------------------
# Time

_MIN_DATETIME = dt.datetime(2000, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive
_MAX_DATETIME = dt.datetime(2100, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive


def utc_datetimes() -> st.SearchStrategy[dt.datetime]:
    """Aware datetimes in UTC, between 2000 and 2100."""
    return st.datetimes(_MIN_DATETIME, _MAX_DATETIME, timezones=st.just(dt.UTC))


def aware_datetimes() -> st.SearchStrategy[dt.datetime]:
    """Aware datetimes with any fixed UTC offset (whole minutes), between 2000 and 2100."""
    offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
        lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
    )
    return st.datetimes(_MIN_DATETIME, _MAX_DATETIME, timezones=offsets)


# --------------------------------------------------------------------------------------------
# Checks, findings and healing actions

# Generation speed matters here: these feed most property tests, so names come from a small
# alphabet (cheap, and they collide often) rather than from regexes.
_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz_"
_NAMES = st.text(_NAME_ALPHABET, min_size=1, max_size=12)
_KNOWN_CHECKS = (
    "cache_size",
    "db_connection",
    "disk_space",
    "file_permissions",
    "php_version",
    "wp_core_integrity",
)
_FEW_CHECKS = st.sampled_from(_KNOWN_CHECKS) | st.text("abc", min_size=1, max_size=2)


def risk_levels() -> st.SearchStrategy[RiskLevel]:
    """Any risk level (a finding's severity or an action's risk)."""
    return st.sampled_from(RiskLevel)


def healing_modes() -> st.SearchStrategy[HealingMode]:
    """Any healing mode."""
    return st.sampled_from(HealingMode)


def check_statuses() -> st.SearchStrategy[CheckStatus]:
    """Any check status."""
    return st.sampled_from(CheckStatus)


def check_categories() -> st.SearchStrategy[CheckCategory]:
    """Any check category."""
    return st.sampled_from(CheckCategory)


def check_names() -> st.SearchStrategy[str]:
    """Check names; drawn from a small pool often, so names repeat within one diagnosis."""
    return st.one_of(
        st.sampled_from(_KNOWN_CHECKS),
        _NAMES,
    )


def check_results(
    *,
    check: st.SearchStrategy[str] | None = None,
    status: st.SearchStrategy[CheckStatus] | None = None,
    severity: st.SearchStrategy[RiskLevel] | None = None,
) -> st.SearchStrategy[CheckResult]:
    """Check results; pass a strategy to pin a field."""
    return st.builds(
        CheckResult,
        check=check if check is not None else check_names(),
        category=check_categories(),
        status=status if status is not None else check_statuses(),
        severity=severity if severity is not None else risk_levels(),
        message=st.text(max_size=20),
        details=st.just({}) | st.dictionaries(_NAMES, st.none() | st.integers(), max_size=2),
        suggested_fix=st.none() | st.text(max_size=20),
        execution_time_ms=st.integers(0, 60_000),
    )


def findings(
    *,
    status: st.SearchStrategy[CheckStatus] | None = None,
    severity: st.SearchStrategy[RiskLevel] | None = None,
) -> st.SearchStrategy[CheckResult]:
    """Lean check results that vary only what policy reads: check, status, severity, message.

    Three to four times faster to draw than :func:`check_results`, which matters for lists.
    """
    return st.builds(
        CheckResult,
        check=_FEW_CHECKS,
        category=st.just(CheckCategory.SYSTEM),
        status=status if status is not None else check_statuses(),
        severity=severity if severity is not None else risk_levels(),
        message=st.sampled_from(("", "timed out after 30 s", "disk 97 % full")),
    )


def command_steps() -> st.SearchStrategy[CommandStep]:
    """Command steps with a short argument vector."""
    return st.builds(
        CommandStep,
        argv=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3).map(tuple),
        description=st.text(max_size=20),
    )


def healing_actions(
    *,
    check: st.SearchStrategy[str] | None = None,
    risk: st.SearchStrategy[RiskLevel] | None = None,
) -> st.SearchStrategy[HealingAction]:
    """Healing actions; pass a strategy to pin the check they answer or their risk."""
    return st.builds(
        HealingAction,
        name=_NAMES,
        description=st.text(max_size=20),
        risk=risk if risk is not None else risk_levels(),
        check=check if check is not None else check_names(),
        steps=st.just(()) | st.tuples(command_steps()),
        requires_backup=st.booleans(),
        estimated_duration_s=st.floats(0, 3600),
        verify_checks=st.lists(check_names(), max_size=2).map(tuple),
        touches=st.lists(st.sampled_from(("wp-config.php", ".env", "storage/logs")), max_size=2),
    )


# Built once: a strategy built inside a composite is validated again on every draw, which made
# diagnoses() ten times slower.
_ANY_FINDING = findings()
_MAYBE_ACTION = st.none() | st.builds(
    HealingAction,
    name=st.just("fix"),
    description=st.just(""),
    risk=risk_levels(),
    check=st.just(""),
    requires_backup=st.booleans(),
)


@st.composite
def diagnoses(
    draw: st.DrawFn, *, max_results: int = 8
) -> tuple[list[CheckResult], Mapping[str, HealingAction]]:
    """A diagnosis of :func:`findings` and the actions proposed for it: ``(results, actions by
    check name)``.

    Some checks have no action; an action's risk is drawn independently of the severity of the
    finding it answers, so the two often differ.
    """
    results = draw(st.lists(_ANY_FINDING, max_size=max_results))
    names = sorted({result.check for result in results})
    drawn = draw(st.lists(_MAYBE_ACTION, min_size=len(names), max_size=len(names)))
    actions = {
        name: attrs.evolve(proposed, check=name)
        for name, proposed in zip(names, drawn, strict=True)
        if proposed is not None
    }
    return results, actions


# --------------------------------------------------------------------------------------------
# Breaker


def breaker_policies() -> st.SearchStrategy[BreakerPolicy]:
    """Breaker policies, small enough that a few steps reach every status."""
    return st.builds(
        BreakerPolicy,
        max_attempts=st.integers(1, 4),
        cooldown_s=st.one_of(
            st.sampled_from((1.0, 60.0, 3600.0)),
            st.floats(0.001, 86_400.0),
        ),
        max_reopens=st.integers(1, 3),
    )


def outcomes(*, failure_weight: int = 1) -> st.SearchStrategy[Outcome]:
    """How an attempt ended; ``failure_weight`` failures are drawn for each success."""
    return st.sampled_from((Outcome.FAILURE,) * failure_weight + (Outcome.SUCCESS,))


def cooldown_thousandths() -> st.SearchStrategy[int]:
    """Spans of 0 to 2 cooldowns, in thousandths of one; zero and exactly one drawn often.

    For rule arguments of state machines, which cannot depend on the drawn policy: multiply
    ``policy.cooldown`` by the number and divide by 1000.
    """
    return st.just(0) | st.just(1000) | st.integers(1, 999) | st.integers(1001, 2000)


def clock_nudges() -> st.SearchStrategy[dt.timedelta]:
    """Nothing, or one microsecond either way: added to a span, it lands on every edge."""
    return st.sampled_from(
        (dt.timedelta(0), dt.timedelta(microseconds=1), -dt.timedelta(microseconds=1))
    )


@functools.cache
def time_advances(cooldown: dt.timedelta) -> st.SearchStrategy[dt.timedelta]:
    """Steps of the clock between 0 and twice ``cooldown``, its edges drawn often.

    Cached: state machines draw from it at every step, and a new strategy is validated anew.
    """
    tick = dt.timedelta(microseconds=1)
    edges = sorted({dt.timedelta(0), max(cooldown - tick, dt.timedelta(0)), cooldown})
    edges.append(cooldown + tick)
    span = int(2 * cooldown / tick)
    return st.one_of(
        st.sampled_from(edges),
        st.integers(0, span).map(lambda micros: dt.timedelta(microseconds=micros)),
    )


_AWARE = aware_datetimes()


@st.composite
def breaker_states(draw: st.DrawFn) -> BreakerState:
    """Any state the breaker accepts, with datetimes in any UTC offset."""
    status = draw(st.sampled_from(BreakerStatus))
    failures = tuple(sorted(draw(st.lists(_AWARE, max_size=5))))
    opened_at: dt.datetime | None = None
    if status in (BreakerStatus.OPEN, BreakerStatus.HALF_OPEN):
        opened_at = draw(_AWARE)
    elif status is BreakerStatus.HELD:
        opened_at = draw(st.none() | _AWARE)
    return BreakerState(
        status=status,
        failures=failures,
        opened_at=opened_at,
        probe_in_flight=status is BreakerStatus.HALF_OPEN and draw(st.booleans()),
        reopen_count=draw(st.integers(0, 5)),
        last_attempt=draw(st.none() | _AWARE),
    )


# --------------------------------------------------------------------------------------------
# Records (the serde round trips)

_TEXT = st.text(max_size=20)
_IDS = st.uuids().map(str)
# JSON-shaped details: what a check may put in a result and the registry stores.
_DETAILS = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    ),
    max_size=4,
)


def applications() -> st.SearchStrategy[Application]:
    """Applications with every field drawn, paths with odd characters included."""
    return st.builds(
        Application,
        id=_IDS,
        server=st.sampled_from(("local", "web-1")),
        path=st.text(min_size=1, max_size=30).map(lambda p: "/" + p),
        stack=st.sampled_from(("wordpress", "nodejs", "deno")),
        stack_version=st.none() | _TEXT,
        evidence=st.lists(_TEXT, max_size=3).map(tuple),
        confidence=st.floats(0, 1),
        last_health_check=st.none() | utc_datetimes(),
        metadata=_DETAILS,
    )


def step_records() -> st.SearchStrategy[StepRecord]:
    return st.builds(
        StepRecord,
        index=st.integers(0, 20),
        description=_TEXT,
        argv=st.none() | st.lists(_TEXT, min_size=1, max_size=4).map(tuple),
        exit_status=st.none() | st.integers(-9, 255),
        output=st.text(max_size=40),
        duration_s=st.floats(0, 1e4),
        error=st.none() | _TEXT,
        started_at=st.none() | utc_datetimes(),
    )


def executions() -> st.SearchStrategy[Execution]:
    return st.builds(
        Execution,
        id=_IDS,
        app_id=_IDS,
        action_name=check_names(),
        check=check_names(),
        risk=risk_levels(),
        status=st.sampled_from(ExecutionStatus),
        fingerprint=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        mode=healing_modes(),
        triggered_by=_TEXT,
        started_at=utc_datetimes(),
        finished_at=st.none() | utc_datetimes(),
        steps=st.lists(step_records(), max_size=3).map(tuple),
        backup_id=st.none() | _IDS,
        rolled_back=st.booleans(),
        error=st.none() | _TEXT,
        process=st.none() | _TEXT,
        action=_DETAILS,
    )


def approvals() -> st.SearchStrategy[Approval]:
    return st.builds(
        Approval,
        id=_IDS,
        app_id=_IDS,
        action_name=check_names(),
        check=check_names(),
        risk=risk_levels(),
        fingerprint=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        status=st.sampled_from(ApprovalStatus),
        requested_at=utc_datetimes(),
        requested_by=_TEXT,
        expires_at=utc_datetimes(),
        decided_at=st.none() | utc_datetimes(),
        decided_by=st.none() | _TEXT,
        execution_id=st.none() | _IDS,
        action=_DETAILS,
    )


# --------------------------------------------------------------------------------------------
# Detection (detection.py and the built-in signatures)

_PACKAGE_NAMES = st.sampled_from(
    ("next", "express", "pg", "react", "laravel/framework", "php", "vite")
)
_VERSION_RANGES = st.one_of(
    st.sampled_from(("^14.2.3", ">=8.1", "latest", "*", "v10.48.4", "npm:next@1", "<5", "")),
    st.text(max_size=12),
    st.integers(),
    st.none(),
)
# Any JSON value: what a manifest holds where the signatures expect something else.
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_DEPENDENCIES = st.dictionaries(_PACKAGE_NAMES, _VERSION_RANGES, max_size=3)
# package.json, composer.json and lock files alike: the fields the signatures read, each
# present or not, well-formed or any JSON at all.
_MANIFESTS = st.fixed_dictionaries(
    {},
    optional={
        "dependencies": _DEPENDENCIES | _JSON_VALUES,
        "devDependencies": _DEPENDENCIES,
        "require": _DEPENDENCIES | _JSON_VALUES,
        "scripts": st.dictionaries(
            st.sampled_from(("start", "serve", "build")), _JSON_VALUES | st.text()
        ),
        "main": _JSON_VALUES,
        "bin": _JSON_VALUES,
        "engines": st.fixed_dictionaries({"node": _VERSION_RANGES}) | _JSON_VALUES,
        "workspaces": st.lists(st.text(max_size=5), max_size=2) | _JSON_VALUES,
        "packages": st.lists(
            st.fixed_dictionaries({"name": _PACKAGE_NAMES, "version": _VERSION_RANGES})
            | _JSON_VALUES,
            max_size=3,
        ),
        "lockfileVersion": st.integers(1, 3),
    },
)
_UNREADABLE_FILES = st.builds(
    ProbedFile,
    path=st.just(""),
    error=st.sampled_from(("permission denied", "not a regular file", "missing")),
)
_PROBE_DIRS = (
    "wp-content",
    "wp-includes",
    "wp-admin",
    "app",
    "pages",
    "src",
    "public",
    "node_modules",
)


def site_probes(*, realistic: Sequence[str] = ()) -> st.SearchStrategy[SiteProbe]:
    """Probes of a root holding a random subset of the built-in signatures' probe files, with
    random, garbage, unreadable or ``realistic`` contents, a few marker directories, and perhaps
    a server script.

    :param realistic: contents a real application might hold (a test passes its own samples).
    """
    paths = sorted(f.path for f in signatures.healer_probe_files())
    contents = st.one_of(
        _MANIFESTS.map(json.dumps),
        _JSON_VALUES.map(json.dumps),
        st.binary(max_size=64),
        st.text(max_size=64),
        st.sampled_from(realistic),
        _UNREADABLE_FILES,
    )
    return _site_probes(st.dictionaries(st.sampled_from(paths), contents, max_size=8))


@st.composite
def _site_probes(draw: st.DrawFn, files: st.SearchStrategy[dict[str, Any]]) -> SiteProbe:
    drawn = draw(files)
    dirs = tuple(draw(st.lists(st.sampled_from(_PROBE_DIRS), max_size=4, unique=True)))
    extra = dict.fromkeys(
        draw(st.lists(st.sampled_from(("server.js", "app.js")), max_size=2)), "//"
    )
    return make_probe({**drawn, **extra}, dirs=dirs, max_bytes=draw(st.none() | st.integers(1, 80)))


@st.composite
def detection_lists(draw: st.DrawFn, stacks: tuple[str, ...]) -> list[Detection]:
    """Detections of ``stacks`` from distinct plugins (each plugin answers once per root), ties
    likely."""
    count = draw(st.integers(0, 6))
    return [
        Detection(
            stack=draw(st.sampled_from(stacks)),
            version=draw(st.none() | st.sampled_from(("1.0", "2.0"))),
            confidence=draw(st.sampled_from((0.3, 0.7, 0.9, 0.95)) | st.floats(0, 1)),
            plugin=f"plugin-{index}",
        )
        for index in range(count)
    ]


# --------------------------------------------------------------------------------------------
# Backups (backup.py's retention)

_BACKUP_IDS = tuple(f"b{index}" for index in range(30))


@st.composite
def backup_records(draw: st.DrawFn, *, now: dt.datetime) -> list[BackupRecord]:
    """Up to 30 backups of three applications, made in the 60 days before ``now``, a quarter of
    them pruned an hour after they were made; ids are :func:`backup_ids`, in order."""
    count = draw(st.integers(min_value=0, max_value=len(_BACKUP_IDS)))
    records = []
    for index in range(count):
        created = now - dt.timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 60)))
        pruned = draw(st.booleans()) and draw(st.booleans())  # a quarter already pruned
        records.append(
            BackupRecord(
                id=_BACKUP_IDS[index],
                app_id=draw(st.sampled_from(["app-a", "app-b", "app-c"])),
                execution_id=None,
                strategy="files",
                host="local",
                location=f"/var/backups/{_BACKUP_IDS[index]}",
                size_bytes=1,
                sha256="0" * 64,
                created_at=created,
                pruned_at=created + dt.timedelta(hours=1) if pruned else None,
            )
        )
    return records


def backup_ids() -> st.SearchStrategy[str]:
    """Any id :func:`backup_records` may give, whether or not the list drawn holds it."""
    return st.sampled_from(_BACKUP_IDS)


# --------------------------------------------------------------------------------------------
# The world-writable scan (builtin/_world_writable.py)


def root_records() -> st.SearchStrategy[list[bytes]]:
    """A root's records as its own ``find -print0`` prints them, in find's order: up to eight
    short byte strings, none holding a NUL."""
    return st.lists(st.binary(max_size=12).filter(lambda b: b"\0" not in b), max_size=8)


# --------------------------------------------------------------------------------------------
# The legacy migration (registry/_legacy_rows.py)

# Text all three backends store as given: no surrogates (not UTF-8), no NUL (PostgreSQL).
_STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_STORABLE_TEXT = st.text(_STORABLE, max_size=12)
_PATH_SEGMENTS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00/"), min_size=1, max_size=6
).filter(lambda s: s not in (".", ".."))
# The legacy healer's values, in the order test_legacy_migration writes out what each becomes.
_LEGACY_SERVERS = tuple(f"srv-{n}" for n in range(7))
_LEGACY_HEALTH = ("UNKNOWN", "HEALTHY", "DEGRADED", "MAINTENANCE", "DOWN", "CRITICAL", "HEALING")
_LEGACY_MODES = ("MANUAL", "SEMI_AUTO", "SUPERVISED", "FULL_AUTO", "AUTO")
_LEGACY_TRIGGERS = ("MANUAL", "SEARCH", "SEMI_AUTO", "FULL_AUTO")
_LEGACY_STATUSES = (
    "PENDING",
    "ANALYZING",
    "DIAGNOSED",
    "APPROVED",
    "HEALING",
    "VERIFYING",
    "SUCCESS",
    "FAILED",
    "SKIPPED",
    "ROLLED_BACK",
)


def storable_texts(*, max_size: int = 12) -> st.SearchStrategy[str]:
    """Short text every registry backend stores as given: no surrogates, no NUL."""
    return st.text(_STORABLE, max_size=max_size)


@st.composite
def legacy_paths(draw: st.DrawFn) -> str:
    """Absolute paths as a legacy site may spell them: a trailing slash, a doubled one."""
    parts = draw(st.lists(_PATH_SEGMENTS, min_size=1, max_size=4))
    spelling = draw(st.sampled_from(["/{}", "/{}/", "//{}"]))
    return spelling.format("/".join(parts))


def legacy_timestamps(when: dt.datetime) -> st.SearchStrategy[Any]:
    """The ways a legacy database may hold one instant (to the millisecond)."""
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    naive = when.astimezone(dt.UTC).replace(tzinfo=None)
    millis = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    return st.sampled_from([when, naive, naive.isoformat(), when.isoformat(), millis])


_LEGACY_INSTANTS = utc_datetimes().flatmap(legacy_timestamps)


@st.composite
def legacy_sites(draw: st.DrawFn) -> dict[str, Any]:
    """``wp_sites`` rows as the legacy healer wrote them, timestamps spelt any way it did."""
    return {
        "id": draw(st.uuids().map(str)),
        "server_id": draw(st.sampled_from(_LEGACY_SERVERS)),
        "domain": draw(st.none() | _STORABLE_TEXT),
        "path": draw(legacy_paths()),
        "wp_version": draw(st.none() | _STORABLE_TEXT),
        "health_status": draw(st.sampled_from(_LEGACY_HEALTH)),
        "healing_mode": draw(st.sampled_from(_LEGACY_MODES)),
        "is_healer_enabled": draw(st.booleans() | st.sampled_from([0, 1])),
        "created_at": draw(_LEGACY_INSTANTS),
        "updated_at": draw(_LEGACY_INSTANTS),
    }


@st.composite
def legacy_executions(draw: st.DrawFn) -> dict[str, Any]:
    """Legacy healing-execution rows as the legacy healer wrote them, of any site id."""
    return {
        "id": draw(st.uuids().map(str)),
        "site_id": draw(st.uuids().map(str)),
        "diagnosis_type": draw(_STORABLE_TEXT.filter(bool)),
        "action": draw(_STORABLE_TEXT.filter(bool)),
        "status": draw(st.sampled_from(_LEGACY_STATUSES)),
        "trigger": draw(st.sampled_from(_LEGACY_TRIGGERS)),
        "triggered_by": draw(st.none() | _STORABLE_TEXT),
        "execution_logs": draw(st.none() | storable_texts(max_size=40)),
        "error_message": draw(st.none() | _STORABLE_TEXT),
        "backup_path": draw(st.none() | _STORABLE_TEXT),
        "started_at": draw(_LEGACY_INSTANTS),
        "finished_at": draw(st.none() | _LEGACY_INSTANTS),
    }
