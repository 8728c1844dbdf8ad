"""The check runner: concurrency, timeouts, crashes and shared host facts."""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

import attrs
import pytest

from universal_healer.checks import (
    CheckContext,
    DiagnosticCheck,
    HostQuery,
    HostRun,
    close_run,
    run_checks,
)
from universal_healer.exceptions import CommandTimeoutError, HostUnreachableError
from universal_healer.hosts import LocalHost
from universal_healer.model import (
    Application,
    CheckCategory,
    CheckResult,
    CheckStatus,
    RiskLevel,
)

APP = Application(id="app-1", server="local", path="/srv/www/site", stack="php")


@attrs.define
class CountingHost:
    """The local host, counting how often its facts are gathered."""

    inner: LocalHost = attrs.field(factory=LocalHost)
    facts_calls: int = 0

    @property
    def name(self):
        return self.inner.name

    async def facts(self):
        self.facts_calls += 1
        return await self.inner.facts()

    def __getattr__(self, attribute):
        return getattr(self.inner, attribute)


@attrs.define
class HeldFactsHost(CountingHost):
    """The local host, whose facts are held back until ``release`` is set."""

    release: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def facts(self):
        self.facts_calls += 1
        await self.release.wait()
        return await self.inner.facts()


def make_check(name, behaviour, **attributes):
    """A check class named ``name`` whose ``run`` is ``behaviour(ctx)``."""

    async def run(self, ctx):
        return await behaviour(ctx)

    namespace = {
        "name": name,
        "category": CheckCategory.SYSTEM,
        "severity": RiskLevel.MEDIUM,
        "run": run,
        **attributes,
    }
    return type(f"Check_{name}", (DiagnosticCheck,), namespace)()


async def passes(ctx):
    return ctx.passed("fine")


def diagnose(checks, *, host=None, **kwargs):
    host = host or LocalHost()

    async def main():
        cache = HostRun(host)

        def make_context(check):
            return CheckContext(check=check, host=host, app=APP, stack=None, host_run=cache)

        return await run_checks(checks, make_context, **kwargs)

    return asyncio.run(main())


class TestConcurrency:
    @pytest.mark.parametrize(
        ("limit", "checks", "expected"),
        [
            pytest.param(1, 5, 1, id="one-at-a-time"),
            pytest.param(3, 10, 3, id="three-of-ten"),
            pytest.param(None, 20, 8, id="default-eight"),
            pytest.param(4, 2, 2, id="fewer-checks-than-slots"),
        ],
    )
    def test_runner_never_runs_more_checks_at_once_than_the_limit(self, limit, checks, expected):
        running = 0
        peak = 0

        async def busy(ctx):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            for _ in range(10):  # yield often, so every check that may run does
                await asyncio.sleep(0)
            running -= 1
            return ctx.passed("done")

        gate = asyncio.Semaphore(limit) if limit is not None else None
        results = diagnose([make_check(f"c{i:02d}", busy) for i in range(checks)], limit=gate)
        assert peak == expected
        assert [r.status for r in results] == [CheckStatus.PASS] * checks


class TestTimeouts:
    def test_a_check_past_the_default_timeout_is_an_error_naming_the_timeout(self):
        async def hangs(ctx):
            await asyncio.Event().wait()

        (result,) = diagnose([make_check("hangs", hangs)], default_timeout=0.05)
        assert result.status is CheckStatus.ERROR
        assert result.message == "check timed out after 0.05 s"
        assert result.details == {"timeout_s": 0.05}

    def test_a_checks_own_timeout_beats_the_default(self):
        async def hangs(ctx):
            await asyncio.Event().wait()

        (result,) = diagnose([make_check("hangs", hangs, timeout=0.05)], default_timeout=30)
        assert result.status is CheckStatus.ERROR
        assert "0.05 s" in result.message

    def test_a_timed_out_check_does_not_hold_up_the_others(self):
        async def hangs(ctx):
            await asyncio.Event().wait()

        results = diagnose(
            [make_check("a_hangs", hangs), make_check("b_passes", passes)], default_timeout=0.05
        )
        assert [(r.check, r.status) for r in results] == [
            ("a_hangs", CheckStatus.ERROR),
            ("b_passes", CheckStatus.PASS),
        ]

    def test_a_command_timeout_inside_a_check_is_an_error_with_its_timeout(self):
        async def slow_command(ctx):
            await ctx.host.run(("sleep", "30"), timeout=0.05)

        (result,) = diagnose([make_check("slow", slow_command)])
        assert result.status is CheckStatus.ERROR
        assert "'sleep' timed out after 0.05 s" in result.message
        assert result.details == {"timeout_s": 0.05}


class TestCrashes:
    def test_an_exception_becomes_an_error_with_its_type_and_message(self):
        async def crashes(ctx):
            raise ValueError("the config parser choked")

        (result,) = diagnose([make_check("crashy", crashes)])
        assert result.status is CheckStatus.ERROR
        assert result.message == "check crashed: ValueError: the config parser choked"
        assert (result.check, result.category, result.severity) == (
            "crashy",
            CheckCategory.SYSTEM,
            RiskLevel.MEDIUM,
        )

    def test_a_host_error_becomes_an_error_naming_the_host(self):
        async def unreachable(ctx):
            raise HostUnreachableError("web-3", "connection refused")

        (result,) = diagnose([make_check("remote", unreachable)])
        assert result.status is CheckStatus.ERROR
        assert result.message == "host error: web-3: connection refused"
        assert result.details == {"host": "web-3"}

    def test_a_command_timeout_raised_directly_keeps_its_timeout(self):
        async def times_out(ctx):
            raise CommandTimeoutError("local", ("du", "-s", "/srv"), 12.0)

        (result,) = diagnose([make_check("du", times_out)])
        assert result.status is CheckStatus.ERROR
        assert result.details == {"timeout_s": 12.0}

    @pytest.mark.parametrize(
        ("returned", "type_name"),
        [
            pytest.param(None, "NoneType", id="none"),
            pytest.param("PASS", "str", id="string"),
            pytest.param({"status": "PASS"}, "dict", id="dict"),
        ],
    )
    def test_a_check_returning_something_else_than_a_result_is_an_error(self, returned, type_name):
        async def returns(ctx):
            return returned

        (result,) = diagnose([make_check("odd", returns)])
        assert result.status is CheckStatus.ERROR
        assert result.message == f"check returned {type_name}, not a CheckResult"

    def test_one_crash_does_not_stop_the_other_checks(self):
        async def crashes(ctx):
            raise RuntimeError("boom")

        results = diagnose([make_check("a", passes), make_check("b", crashes)])
        assert [r.status for r in results] == [CheckStatus.PASS, CheckStatus.ERROR]

    def test_a_check_that_never_implemented_run_is_an_error(self):
        class Unfinished(DiagnosticCheck):
            name = "unfinished"
            category = CheckCategory.CONFIGURATION
            severity = RiskLevel.LOW

        (result,) = diagnose([Unfinished()])
        assert result.status is CheckStatus.ERROR
        assert "NotImplementedError" in result.message


class TestResults:
    def test_execution_time_is_recorded(self):
        async def waits(ctx):
            await asyncio.sleep(0.02)
            return ctx.passed("waited")

        (result,) = diagnose([make_check("waits", waits)])
        assert result.execution_time_ms > 0

    def test_execution_time_is_recorded_for_errors_too(self):
        async def hangs(ctx):
            await asyncio.Event().wait()

        (result,) = diagnose([make_check("hangs", hangs)], default_timeout=0.05)
        assert result.execution_time_ms > 0

    def test_results_are_sorted_by_check_name(self):
        results = diagnose([make_check(name, passes) for name in ("memory", "cpu", "disk")])
        assert [r.check for r in results] == ["cpu", "disk", "memory"]

    def test_a_result_carries_the_checks_name_category_and_severity(self):
        async def warns(ctx):
            return ctx.warn("getting full", suggested_fix="clean up", used=81)

        (result,) = diagnose([make_check("disk", warns)])
        assert result == CheckResult(
            check="disk",
            category=CheckCategory.SYSTEM,
            status=CheckStatus.WARN,
            severity=RiskLevel.MEDIUM,
            message="getting full",
            details={"used": 81},
            suggested_fix="clean up",
            execution_time_ms=result.execution_time_ms,
        )

    def test_no_checks_give_no_results(self):
        assert diagnose([]) == ()


class TestFactsCache:
    def test_facts_are_gathered_once_for_many_checks(self):
        host = CountingHost()

        async def reads_facts(ctx):
            facts = await ctx.facts()
            return ctx.passed(f"{facts.cpu_count} CPUs")

        results = diagnose([make_check(f"c{i}", reads_facts) for i in range(12)], host=host)
        assert host.facts_calls == 1
        assert {r.status for r in results} == {CheckStatus.PASS}

    def test_facts_are_not_gathered_when_no_check_asks(self):
        host = CountingHost()
        diagnose([make_check("a", passes)], host=host)
        assert host.facts_calls == 0

    def test_a_check_timing_out_while_waiting_for_facts_does_not_cancel_them(self):
        """The shared gathering is shielded: one impatient check must not spoil it."""
        host = HeldFactsHost()

        async def impatient(ctx):
            return ctx.passed(str(await ctx.facts()))

        async def patient(ctx):
            host.release.set()
            return ctx.passed(f"{(await ctx.facts()).cpu_count} CPUs")

        # One at a time, in order: the impatient check starts the gathering and times out.
        results = diagnose(
            [make_check("a", impatient, timeout=0.05), make_check("b", patient)],
            host=host,
            limit=asyncio.Semaphore(1),
        )
        assert [r.status for r in results] == [CheckStatus.ERROR, CheckStatus.PASS]
        assert host.facts_calls == 1


@attrs.frozen
class Lengths(HostQuery[str, int]):
    """A query that records every call it gets; ``gate`` holds answers back while unset."""

    calls: list = attrs.field(factory=list, eq=False)
    gate: asyncio.Event | None = attrs.field(default=None, eq=False)
    fail_with: Exception | None = attrs.field(default=None, eq=False)
    skip: frozenset = attrs.field(default=frozenset(), eq=False)
    label: str = "lengths"

    async def answer(self, host, keys):
        self.calls.append(tuple(keys))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return {key: len(key) for key in keys if key not in self.skip}


def asks(query, key=None):
    """A check behaviour that asks ``query`` about ``key`` (the check's own name by default)."""

    async def behaviour(ctx):
        value = await ctx.ask(query, key or ctx.check.name)
        return ctx.passed(f"answer {value}")

    return behaviour


class TestHostQuery:
    def test_keys_asked_by_concurrent_checks_go_to_one_call(self):
        query = Lengths()
        names = ["a", "bb", "ccc", "dddd"]
        results = diagnose([make_check(name, asks(query)) for name in names])
        assert query.calls == [tuple(names)]
        assert [r.message for r in results] == ["answer 1", "answer 2", "answer 3", "answer 4"]

    def test_a_key_is_answered_once_per_run_however_often_it_is_asked(self):
        query = Lengths()
        checks = [make_check(f"c{i}", asks(query, "same")) for i in range(5)]
        results = diagnose(checks, limit=asyncio.Semaphore(2))
        assert query.calls == [("same",)]
        assert {r.message for r in results} == {"answer 4"}

    def test_a_key_asked_again_while_its_answer_is_on_the_way_waits_for_that_answer(self):
        gate = asyncio.Event()
        query = Lengths(gate=gate)

        async def asks_late(ctx):
            for _ in range(5):  # the first call is under way by now
                await asyncio.sleep(0)
            gate.set()
            return ctx.passed(f"answer {await ctx.ask(query, 'key')}")

        results = diagnose([make_check("a", asks(query, "key")), make_check("b", asks_late)])
        assert query.calls == [("key",)]
        assert [r.message for r in results] == ["answer 3", "answer 3"]

    def test_keys_asked_while_every_slot_is_busy_leave_together(self):
        gate = asyncio.Event()
        query = Lengths(gate=gate)  # two calls at once, by default

        async def asks_after(ctx):
            name = ctx.check.name
            turns = {"a": 0, "b": 3}[name] if name in "ab" else 6 + int(name[1:])
            for _ in range(turns):  # one key a turn: none would share a call by itself
                await asyncio.sleep(0)
            answer = asyncio.ensure_future(ctx.ask(query, ctx.check.name))
            await asyncio.sleep(0)
            if ctx.check.name == "c9":
                gate.set()
            return ctx.passed(f"answer {await answer}")

        names = ["a", "b"] + [f"c{i}" for i in range(10)]
        results = diagnose([make_check(n, asks_after) for n in names], limit=asyncio.Semaphore(12))
        assert query.calls == [("a",), ("b",), tuple(f"c{i}" for i in range(10))]
        assert {r.status for r in results} == {CheckStatus.PASS}

    def test_no_call_holds_more_than_max_keys(self):
        @attrs.frozen
        class Small(Lengths):
            max_keys: ClassVar[int] = 3

        query = Small()
        diagnose([make_check(f"k{i}", asks(query)) for i in range(8)])
        assert sorted(len(call) for call in query.calls) == [2, 3, 3]
        assert sorted(key for call in query.calls for key in call) == [f"k{i}" for i in range(8)]

    def test_equal_queries_share_their_batches_and_different_ones_do_not(self):
        first, same, other = Lengths(), Lengths(), Lengths(label="other")
        checks = [
            make_check("a", asks(first)),
            make_check("b", asks(same)),
            make_check("c", asks(other)),
        ]
        diagnose(checks)
        assert first.calls == [("a", "b")]
        assert same.calls == []
        assert other.calls == [("c",)]

    def test_a_failed_call_is_an_error_for_every_check_that_asked_and_is_watched(self):
        query = Lengths(fail_with=HostUnreachableError("web-1", "connection lost"))
        seen = []

        async def main():
            run = HostRun(LocalHost())
            watched = run.watched(seen.append)

            def make_context(check):
                return CheckContext(
                    check=check, host=LocalHost(), app=APP, stack=None, host_run=watched
                )

            return await run_checks([make_check(n, asks(query)) for n in "xyz"], make_context)

        results = asyncio.run(main())
        assert [r.status for r in results] == [CheckStatus.ERROR] * 3
        assert all("connection lost" in r.message for r in results)
        assert query.calls == [("x", "y", "z")]
        assert len(seen) == 3
        assert {type(err) for err in seen} == {HostUnreachableError}

    def test_a_key_missing_from_the_answer_fails_only_its_own_check(self):
        query = Lengths(skip=frozenset({"bb"}))
        results = diagnose([make_check(name, asks(query)) for name in ("a", "bb", "ccc")])
        assert [r.status for r in results] == [
            CheckStatus.PASS,
            CheckStatus.ERROR,
            CheckStatus.PASS,
        ]
        assert "Lengths gave no answer for 'bb'" in results[1].message

    def test_a_check_that_gives_up_waiting_does_not_spoil_the_answer_for_the_others(self):
        gate = asyncio.Event()
        query = Lengths(gate=gate)

        async def patient(ctx):
            await asyncio.sleep(0.1)  # the impatient check has timed out by now
            gate.set()
            return ctx.passed(f"answer {await ctx.ask(query, 'key')}")

        results = diagnose(
            [make_check("a", asks(query, "key"), timeout=0.05), make_check("b", patient)]
        )
        assert [r.status for r in results] == [CheckStatus.ERROR, CheckStatus.PASS]
        assert results[1].message == "answer 3"
        assert query.calls == [("key",)]

    def test_the_base_class_must_be_given_an_answer(self):
        async def main():
            return await HostQuery().answer(LocalHost(), ["x"])

        with pytest.raises(NotImplementedError):
            asyncio.run(main())


@attrs.frozen
class FailsOnce(Lengths):
    """Fails its first call, answers the next ones."""

    failed: list = attrs.field(factory=list, eq=False)

    async def answer(self, host, keys):
        self.calls.append(tuple(keys))
        if not self.failed:
            self.failed.append(True)
            raise HostUnreachableError("web-1", "a blip")
        return {key: len(key) for key in keys}


class TestPriming:
    def prime_then_diagnose(self, query, primed, checks):
        async def main():
            run = HostRun(LocalHost())
            run.prime((query, key) for key in primed)

            def make_context(check):
                return CheckContext(
                    check=check, host=LocalHost(), app=APP, stack=None, host_run=run
                )

            return await run_checks(checks, make_context)

        return asyncio.run(main())

    def test_primed_keys_go_together_and_the_checks_that_ask_them_make_no_call(self):
        query = Lengths()
        names = [f"k{i}" for i in range(10)]
        results = self.prime_then_diagnose(
            query, names, [make_check(n, asks(query)) for n in names]
        )
        assert query.calls == [tuple(names)]
        assert {r.status for r in results} == {CheckStatus.PASS}

    def test_a_key_nobody_primed_still_gets_its_answer(self):
        query = Lengths()
        results = self.prime_then_diagnose(query, ["a"], [make_check("bbb", asks(query))])
        assert [key for call in query.calls for key in call] == ["a", "bbb"]
        assert results[0].message == "answer 3"

    def test_a_failed_priming_is_not_remembered_the_check_asks_again(self):
        query = FailsOnce()

        async def late(ctx):
            for _ in range(10):  # the primed call has failed by now
                await asyncio.sleep(0)
            return ctx.passed(f"answer {await ctx.ask(query, 'key')}")

        results = self.prime_then_diagnose(query, ["key"], [make_check("late", late)])
        assert query.calls == [("key",), ("key",)]
        assert results[0].message == "answer 3"

    def test_checks_declare_no_queries_unless_they_say_so(self):
        check = make_check("plain", passes)
        assert tuple(check.queries(APP, None)) == ()


@attrs.define
class Ledger:
    """Resources that write down when they are entered and exited."""

    events: list = attrs.field(factory=list)
    opened: int = 0

    def opener(self, name, *, fail=None, hold=None):
        @contextlib.asynccontextmanager
        async def resource():
            self.opened += 1
            self.events.append(f"enter {name}")
            if hold is not None:
                await hold.wait()
            if fail is not None:
                raise fail
            try:
                yield f"resource {name}"
            finally:
                self.events.append(f"exit {name}")

        return resource


class TestRunResources:
    def run_with(self, checks, *, close=True):
        async def main():
            run = HostRun(LocalHost())

            def make_context(check):
                return CheckContext(
                    check=check, host=LocalHost(), app=APP, stack=None, host_run=run
                )

            results = await run_checks(checks, make_context)
            if close:
                await run.aclose()
            return results, run

        return asyncio.run(main())

    def test_checks_asking_for_one_resource_share_it_and_it_is_exited_when_the_run_closes(self):
        ledger = Ledger()

        async def uses(ctx):
            return ctx.passed(await ctx.host_run.enter("db", ledger.opener("db")))

        results, _ = self.run_with([make_check(f"c{i}", uses) for i in range(5)])
        assert {r.message for r in results} == {"resource db"}
        assert ledger.opened == 1
        assert ledger.events == ["enter db", "exit db"]

    def test_resources_are_exited_last_entered_first(self):
        ledger = Ledger()

        async def first(ctx):
            return ctx.passed(await ctx.host_run.enter("a", ledger.opener("a")))

        async def second(ctx):
            await asyncio.sleep(0.01)
            return ctx.passed(await ctx.host_run.enter("b", ledger.opener("b")))

        self.run_with([make_check("first", first), make_check("second", second)])
        assert ledger.events == ["enter a", "enter b", "exit b", "exit a"]

    def test_a_resource_that_cannot_be_opened_fails_every_check_that_asks_once(self):
        ledger = Ledger()

        async def uses(ctx):
            return ctx.passed(
                await ctx.host_run.enter("db", ledger.opener("db", fail=OSError("access denied")))
            )

        results, _ = self.run_with([make_check(f"c{i}", uses) for i in range(3)])
        assert [r.status for r in results] == [CheckStatus.ERROR] * 3
        assert all("access denied" in r.message for r in results)
        assert ledger.opened == 1

    def test_a_check_that_gives_up_while_a_resource_opens_does_not_spoil_it(self):
        ledger = Ledger()
        hold = asyncio.Event()

        async def impatient(ctx):
            return ctx.passed(await ctx.host_run.enter("db", ledger.opener("db", hold=hold)))

        async def patient(ctx):
            await asyncio.sleep(0.1)  # the impatient check has timed out by now
            hold.set()
            return ctx.passed(await ctx.host_run.enter("db", ledger.opener("db")))

        results, _ = self.run_with(
            [make_check("a", impatient, timeout=0.05), make_check("b", patient)]
        )
        assert [r.status for r in results] == [CheckStatus.ERROR, CheckStatus.PASS]
        assert ledger.opened == 1
        assert ledger.events == ["enter db", "exit db"]

    def test_a_closed_run_opens_nothing(self):
        ledger = Ledger()

        async def main():
            run = HostRun(LocalHost())
            await run.aclose()
            with pytest.raises(RuntimeError, match="closed"):
                await run.enter("db", ledger.opener("db"))

        asyncio.run(main())
        assert ledger.opened == 0

    def test_what_a_resource_cannot_undo_is_logged_by_close_run_and_not_raised(self, caplog):
        @contextlib.asynccontextmanager
        async def leaves_a_file():
            yield "file"
            raise OSError("could not remove /tmp/healer-x/client.cnf")

        async def main():
            run = HostRun(LocalHost())
            await run.enter("file", leaves_a_file)
            await close_run(run)

        asyncio.run(main())
        [record] = [r for r in caplog.records if r.levelname == "ERROR"]
        assert "left something behind" in record.getMessage()
        assert "client.cnf" in str(record.exc_info[1])

    def test_diagnose_closes_the_run_it_made_itself(self):
        from universal_healer.diagnosis import diagnose as diagnose_app  # noqa: PLC0415
        from universal_healer.hookspecs import hookimpl  # noqa: PLC0415
        from universal_healer.plugins import build_plugin_manager  # noqa: PLC0415

        ledger = Ledger()

        async def uses(ctx):
            return ctx.passed(await ctx.host_run.enter("db", ledger.opener("db")))

        class Plugin:
            @hookimpl
            def healer_get_checks(self, stack):
                return [make_check("uses_a_resource", uses)]

        manager = build_plugin_manager(load_entry_points=False, extra=[("res", Plugin())])
        diagnosis = asyncio.run(diagnose_app(LocalHost(), APP, manager))
        assert any(r.check == "uses_a_resource" for r in diagnosis.results)
        assert ledger.events == ["enter db", "exit db"]
