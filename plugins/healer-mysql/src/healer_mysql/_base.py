"""What every check of this plugin that asks the server shares."""

from __future__ import annotations

from typing import ClassVar

from universal_healer._mysql import MySQLClientError
from universal_healer.checks import CheckContext, DiagnosticCheck
from universal_healer.model import CheckCategory, CheckResult, CheckStatus
from universal_healer.secrets import redact

from healer_mysql.connection import (
    CredentialsError,
    Login,
    Session,
    login_for_check,
    open_session,
)
from healer_mysql.settings import Settings, SettingsError

__all__ = ["MySQLCheck", "grade", "int_value", "percent", "session_for"]


def grade(value: float, warn_above: float, fail_above: float) -> CheckStatus:
    """FAIL strictly above ``fail_above``, WARN strictly above ``warn_above``, else PASS."""
    if value > fail_above:
        return CheckStatus.FAIL
    if value > warn_above:
        return CheckStatus.WARN
    return CheckStatus.PASS


def int_value(pairs: dict[str, str], name: str) -> int | None:
    """A non-negative integer status or variable, or None when absent or not a number."""
    value = pairs.get(name.lower(), "")
    return int(value) if value.isdigit() else None


def percent(part: int, whole: int) -> float:
    """``part`` in percent of ``whole``; 0 when there is no whole."""
    return 100.0 * part / whole if whole else 0.0


async def session_for(ctx: CheckContext, login: Login, *, timeout: float) -> Session:
    """The application's session for the rest of the diagnosis run.

    Its option file (which holds the password) is written once and shared by every check of
    the application that logs in the same way; the run removes it when it ends.
    """
    key = ("healer_mysql.session", ctx.app.path, login.credentials, timeout)
    return await ctx.host_run.enter(key, lambda: open_session(ctx.host, login, timeout=timeout))


class MySQLCheck(DiagnosticCheck):
    """Base of the checks that ask a reachable server something.

    Subclasses implement :meth:`inspect`; the base logs in, opens a session, and turns a server
    that cannot answer or a bad setting into an ERROR result that says why.

    :cvar query_timeout: seconds one client run may take before the host kills the client.
    """

    category: ClassVar[CheckCategory] = CheckCategory.DATABASE
    depends_on: ClassVar[tuple[str, ...]] = ("mysql_connection",)
    query_timeout: ClassVar[float] = 20.0

    async def run(self, ctx: CheckContext) -> CheckResult:
        """Log in, then :meth:`inspect`."""
        try:
            settings = Settings.from_metadata(ctx.app.metadata)
            login = await login_for_check(ctx.host, ctx.app, ctx.secrets)
            db = await session_for(ctx, login, timeout=self.query_timeout)
            return await self.inspect(ctx, db, settings)
        except (SettingsError, CredentialsError) as err:
            return ctx.error(str(err))
        except MySQLClientError as err:
            return ctx.error(
                f"the server could not answer: {redact(err.reason, ctx.secrets.values())}"
            )

    async def inspect(self, ctx: CheckContext, db: Session, settings: Settings) -> CheckResult:
        """Look at the server through ``db`` and return a result built with ``ctx``."""
        raise NotImplementedError
