"""The file_permissions scan for many roots at once: one ``find``, the answers of many.

Every test compares the shared scan with each root's own scan on the real local host and real
files: the shared one must give exactly the same answer, and fall back to the root's own scan
whenever it cannot vouch for a root (an error it cannot place, a timeout, too much output).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import strategies as hs
from universal_healer.builtin._world_writable import WorldWritable, WritableScan
from universal_healer.builtin.checks import FilePermissionsCheck
from universal_healer.checks import CheckContext, HostRun, run_checks
from universal_healer.hosts import LocalHost
from universal_healer.hosts.base import CommandResult
from universal_healer.model import Application, CheckStatus

QUERY = WorldWritable(scan_timeout_s=20.0, batch_timeout_s=20.0, max_output=1024 * 1024)
HOSTILE = b"my site 'q' \"dq\" ; $(touch pwned) `touch pwned` \nline2 \xff"


@attrs.define
class CountingHost:
    """A host (the local one by default) that keeps the argv of every command it runs."""

    inner: object = attrs.field(factory=LocalHost)
    commands: list = attrs.field(factory=list)

    @property
    def name(self):
        return "counting"

    async def run(self, argv, **kwargs):
        self.commands.append(tuple(argv))
        return await self.inner.run(argv, **kwargs)

    def __getattr__(self, attribute):
        return getattr(self.inner, attribute)

    def finds(self):
        """The find commands run, as the number of roots each was given."""
        return [len(argv[2 : argv.index("-xdev")]) for argv in self.commands if argv[0] == "find"]


@attrs.define
class Unprivileged:
    """The local host without root's power to ignore file permissions (as over SSH)."""

    inner: LocalHost = attrs.field(factory=LocalHost)

    @property
    def name(self):
        return "unprivileged"

    async def run(self, argv, **kwargs):
        drop = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--")
        return await self.inner.run((*drop, *argv), **kwargs)

    def __getattr__(self, attribute):
        return getattr(self.inner, attribute)


def writable(path, mode=0o666):
    path.write_text("x")
    path.chmod(mode)


def site(root, *, world_writable=(), mode=0o755):
    root.mkdir(parents=True)
    root.chmod(mode)
    writable(root / "index.php", 0o644)
    for name in world_writable:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        writable(root / name)
    return root


@pytest.fixture
def roots(tmp_path):
    """Roots of every kind the check meets, as strings."""
    clean = site(tmp_path / "clean")
    findings = site(tmp_path / "findings", world_writable=("ww.txt", "uploads/a/b.jpg"))
    open_root = site(tmp_path / "open-root", mode=0o777)
    sticky = site(tmp_path / "sticky")
    (sticky / "tmp").mkdir()
    (sticky / "tmp").chmod(0o1777)
    writable(sticky / "tmp" / "upload")
    release = site(tmp_path / "release-42", world_writable=("cache/x",))
    (tmp_path / "current").symlink_to(release)
    parent = site(tmp_path / "monorepo", world_writable=("top.log",))
    site(parent / "apps" / "web", world_writable=("web.log",))
    hostile = os.path.join(os.fsencode(tmp_path), HOSTILE)
    os.mkdir(hostile)
    for child in (b"bad\xffname", b"new\nline"):
        writable(Path(os.fsdecode(os.path.join(hostile, child))))
    paths = [clean, findings, open_root, sticky, tmp_path / "current", parent]
    return [str(p) for p in paths] + [str(parent / "apps" / "web"), os.fsdecode(hostile)]


def alone(query, roots, host=None):
    host = host or LocalHost()

    async def main():
        return {root: await query.scan_one(host, root) for root in roots}

    return asyncio.run(main())


def together(query, roots, host):
    return asyncio.run(query.answer(host, roots))


class TestTogether:
    def test_many_roots_get_from_one_find_exactly_what_each_gets_alone(self, roots):
        host = CountingHost()
        answers = together(QUERY, roots, host)
        assert answers == alone(QUERY, roots)
        assert host.finds() == [len(roots)]
        assert answers[roots[1]].paths == ("uploads/a/b.jpg", "ww.txt")
        assert answers[roots[2]].paths == (".",)
        assert answers[roots[3]].paths == ("tmp/upload",)
        assert answers[roots[4]].paths == ("cache/x",)  # through the release symlink
        assert answers[roots[5]].paths == ("apps/web/web.log", "top.log")  # nested: both
        assert answers[roots[6]].paths == ("web.log",)
        assert answers[roots[7]].paths == ("bad\\xffname", "new\nline")

    def test_a_hostile_root_reaches_find_as_data(self, roots, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)  # where a shell would run the embedded touch
        together(QUERY, roots, LocalHost())
        assert not (tmp_path / "pwned").exists()

    def test_output_past_the_cap_is_cut_for_each_root_as_its_own_find_would_cut_it(self, tmp_path):
        small = attrs.evolve(QUERY, max_output=64)
        many = site(
            tmp_path / "many", world_writable=[f"world-writable-{i:02d}" for i in range(30)]
        )
        few = site(tmp_path / "few", world_writable=["one"])
        roots = [str(many), str(few)]
        host = CountingHost()
        answers = together(small, roots, host)
        assert answers == alone(small, roots)
        assert answers[str(many)].truncated
        assert 0 < len(answers[str(many)].paths) < 30
        assert answers[str(few)] == WritableScan(
            paths=("one",), complete=True, truncated=False, errors=()
        )
        assert host.finds() == [2]


class TestFallingBackToOneRootAtATime:
    def test_a_root_an_error_names_is_scanned_alone_and_the_others_are_not(self, tmp_path):
        locked_site = site(tmp_path / "locked-site", world_writable=("ww",))
        (locked_site / "locked").mkdir()
        writable(locked_site / "locked" / "hidden-ww")
        (locked_site / "locked").chmod(0)
        roots = [str(site(tmp_path / f"ok-{i}", world_writable=("w",))) for i in range(3)]
        roots.insert(1, str(locked_site))
        host = CountingHost(inner=Unprivileged())

        answers = together(QUERY, roots, host)

        assert answers == alone(QUERY, roots, Unprivileged())
        assert host.finds() == [4, 1]
        locked = answers[str(locked_site)]
        assert locked.paths == ("ww",)
        assert not locked.complete
        assert any("Permission denied" in line for line in locked.errors)
        assert all(answers[root].complete for root in roots if root != str(locked_site))

    def test_an_error_that_names_no_root_sends_every_root_alone(self, tmp_path):
        hostile = os.path.join(os.fsencode(tmp_path), HOSTILE)
        os.mkdir(hostile)
        os.mkdir(os.path.join(hostile, b"locked"))
        os.chmod(os.path.join(hostile, b"locked"), 0)
        roots = [os.fsdecode(hostile), str(site(tmp_path / "ok", world_writable=("w",)))]
        host = CountingHost(inner=Unprivileged())

        answers = together(QUERY, roots, host)

        assert answers == alone(QUERY, roots, Unprivileged())
        assert host.finds() == [2, 1, 1]
        assert not answers[roots[0]].complete
        assert answers[roots[1]].complete

    def test_a_shared_find_past_its_timeout_sends_every_root_alone(self, tmp_path):
        """The shared find really runs past its timeout (it starts 5 s late, as on a host that
        slow) and LocalHost kills it; each root is then scanned on its own."""

        @attrs.define
        class SlowToStartMany(CountingHost):
            async def run(self, argv, **kwargs):
                if argv[0] == "find" and argv.index("-xdev") > 3:  # more than one root
                    self.commands.append(tuple(argv))
                    late = ("sh", "-c", 'sleep 5; exec "$@"', "sh", *argv)
                    return await self.inner.run(late, **kwargs)
                return await super().run(argv, **kwargs)

        roots = [str(site(tmp_path / "a", world_writable=("w",))), str(site(tmp_path / "b"))]
        hasty = attrs.evolve(QUERY, batch_timeout_s=0.5)
        host = SlowToStartMany()

        answers = together(hasty, roots, host)

        assert answers == alone(QUERY, roots)
        assert host.finds() == [2, 1, 1]
        assert all(answer.complete for answer in answers.values())

    def test_a_host_without_find_says_so_for_every_root(self, tmp_path):
        @attrs.define
        class NoFind(LocalHost):
            async def run(self, argv, **kwargs):
                if argv[0] == "find":
                    argv = ("/nonexistent/bin/find", *argv[1:])
                return await super().run(argv, **kwargs)

        roots = [str(site(tmp_path / "a")), str(site(tmp_path / "b"))]
        answers = together(QUERY, roots, NoFind())
        assert all(answer.find_missing for answer in answers.values())


class TestThroughTheCheck:
    def test_the_check_declares_its_scan_so_that_a_run_can_ask_for_every_root_at_once(self):
        check = FilePermissionsCheck()
        app = Application(id="a", server="local", path="/srv/www/site", stack="php")
        [(query, key)] = check.queries(app, None)
        assert key == "/srv/www/site"
        assert query == WorldWritable(
            scan_timeout_s=check.scan_timeout_s,
            batch_timeout_s=check.batch_timeout_s,
            max_output=check.max_output,
        )
        relative = attrs.evolve(app, path="srv/www/site")
        assert list(check.queries(relative, None)) == []

    def test_apps_diagnosed_together_get_the_results_they_get_alone(self, roots):
        """As a fleet diagnoses them: the run primed with every app's declared scan (one find
        for all, whatever the timing of the checks), then each app's check."""
        check = FilePermissionsCheck()
        apps = [
            Application(id=f"app-{i}", server="local", path=root, stack="php")
            for i, root in enumerate(roots)
        ]

        async def diagnose(apps, host):
            run = HostRun(host)
            run.prime(pair for app in apps for pair in check.queries(app, None))

            async def one(app):
                def make_context(check):
                    return CheckContext(check=check, host=host, app=app, stack=None, host_run=run)

                (result,) = await run_checks([check], make_context)
                return attrs.evolve(result, execution_time_ms=0)

            return await asyncio.gather(*(one(app) for app in apps))

        host = CountingHost()
        shared = asyncio.run(diagnose(apps, host))
        each = [asyncio.run(diagnose([app], LocalHost()))[0] for app in apps]
        assert shared == each
        assert host.finds() == [len(apps)]
        assert {r.status for r in shared} == {CheckStatus.PASS, CheckStatus.FAIL}


# Each root's records as its own find prints them; the shared find prints the roots one after
# another, each record behind its root.
@given(
    records=st.lists(hs.root_records(), min_size=2, max_size=5),
    cap=st.integers(min_value=0, max_value=80),
)
def test_the_shared_answer_is_each_roots_own_answer_cut_at_its_own_cap(records, cap):
    roots = [f"/srv/app-{i}" for i in range(len(records))]
    shared = b"".join(
        os.fsencode(root) + b"\0" + record + b"\0"
        for root, found in zip(roots, records, strict=True)
        for record in found
    )
    query = attrs.evolve(QUERY, max_output=cap)
    done = CommandResult(argv=("find",), exit_status=0, stdout=shared, stderr=b"", duration_s=0.0)

    answers = query._split(roots, done)

    for root, found in zip(roots, records, strict=True):
        own = b"".join(record + b"\0" for record in found)
        expected = tuple(
            (r or b".").decode("utf-8", errors="backslashreplace")
            for r in sorted(own[:cap].split(b"\0")[:-1])
        )
        assert answers[root].paths == expected
        assert answers[root].truncated == (len(own) > cap)


@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param(b"/srv/elsewhere\0x\0", id="a-root-nobody-asked-about"),
        pytest.param(b"/srv/app-0\0x\0/srv/app-1\0", id="a-record-cut-in-half"),
        pytest.param(b"/srv/app-0\0x", id="no-final-separator"),
    ],
)
def test_an_answer_that_does_not_add_up_vouches_for_no_root(stdout):
    done = CommandResult(argv=("find",), exit_status=0, stdout=stdout, stderr=b"", duration_s=0.0)
    assert QUERY._split(["/srv/app-0", "/srv/app-1"], done) == {}


@pytest.mark.parametrize(
    ("status", "stderr"),
    [
        pytest.param(1, b"", id="a-failure-that-says-nothing"),
        pytest.param(-9, b"", id="killed-by-a-signal"),
        pytest.param(1, b"find: warning: something odd\n", id="a-message-naming-no-path"),
        pytest.param(
            1,
            b"find: \xe2\x80\x98/srv/elsewhere\xe2\x80\x99: Permission denied\n",
            id="another-path",
        ),
    ],
)
def test_a_failed_shared_find_that_names_no_root_vouches_for_none(status, stderr):
    stdout = b"/srv/app-0\0x\0"
    done = CommandResult(
        argv=("find",), exit_status=status, stdout=stdout, stderr=stderr, duration_s=0.0
    )
    assert QUERY._split(["/srv/app-0", "/srv/app-1"], done) == {}


def test_a_failed_shared_find_vouches_for_the_roots_its_messages_do_not_name():
    stderr = b"find: \xe2\x80\x98/srv/app-1/locked\xe2\x80\x99: Permission denied\n"
    done = CommandResult(
        argv=("find",), exit_status=1, stdout=b"/srv/app-0\0x\0", stderr=stderr, duration_s=0.0
    )
    assert set(QUERY._split(["/srv/app-0", "/srv/app-1", "/srv/app-10"], done)) == {
        "/srv/app-0",
        "/srv/app-10",
    }
