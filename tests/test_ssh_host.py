"""SSHHost against real OpenSSH servers on loopback (tests/sshfleet.py).

The servers run on this machine, so a test can do something over SSH and look at the result
locally (a file created, a process killed, a command line in /proc), and can compare SSHHost's
answers with LocalHost's for the very same files.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import shutil
import socket
import stat
import subprocess

import asyncssh
import attrs
import pymysql
import pytest

from sshfleet import SSHFleet, free_port, processes_with, wait_for_exit
from universal_healer.exceptions import (
    AuthenticationError,
    CommandTimeoutError,
    HostUnreachableError,
    RemoteError,
)
from universal_healer.hosts import FileRead, Host, Listener, LocalHost
from universal_healer.hosts import ssh as ssh_module
from universal_healer.hosts._sshconnection import _ASYNCSSH_ERRORS
from universal_healer.hosts.ssh import SSHConfig, SSHHost, translate_error


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = SSHFleet(tmp_path_factory.mktemp("sshfleet"))
    yield fleet
    fleet.stop_all()


@pytest.fixture(scope="module")
def web1(fleet):
    return fleet.start("web1", address="127.0.0.2")


@pytest.fixture(scope="module")
def web2(fleet):
    return fleet.start("web2", address="127.0.0.3")


def on(config, operation):
    """Run ``operation(host)`` on a fresh SSHHost in a fresh event loop, then close the host."""

    async def main():
        host = SSHHost(config)
        try:
            return await operation(host)
        finally:
            await host.close()

    return asyncio.run(main())


async def eventually(predicate, *, what, deadline_s=10.0):
    """Wait until ``predicate()`` is truthy and return it; fail after the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not (value := predicate()):
        if loop.time() > end:
            pytest.fail(f"gave up after {deadline_s:g} s waiting for {what}")
        await asyncio.sleep(0.02)
    return value


def fingerprint(public_key_line: str) -> str:
    return asyncssh.import_public_key(public_key_line).get_fingerprint("sha256")


def silent_server():
    """A TCP server on loopback that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


class TestSSHHostIsAHost:
    def test_ssh_host_satisfies_the_host_protocol(self):
        assert isinstance(SSHHost(SSHConfig(host="127.0.0.1")), Host)

    def test_an_ssh_host_is_named_after_its_address(self):
        assert SSHHost(SSHConfig(host="db1", port=2222)).name == "db1:2222"
        assert SSHHost(SSHConfig(host="db1")).name == "db1"
        assert SSHHost(SSHConfig(host="db1"), name="primary").name == "primary"

    def test_the_password_never_shows_in_the_config_repr(self):
        config = SSHConfig(host="db1", password="hunter2-canary")  # noqa: S106 - a canary
        assert "hunter2-canary" not in repr(config)
        assert "hunter2-canary" not in repr(SSHHost(config))

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param({"port": 0}, id="port-zero"),
            pytest.param({"port": 70000}, id="port-too-big"),
            pytest.param({"max_channels": 0}, id="no-channels"),
            pytest.param({"connect_timeout": 0}, id="zero-connect-timeout"),
        ],
    )
    def test_a_config_that_cannot_work_is_refused(self, change):
        with pytest.raises(ValueError, match=next(iter(change))):
            SSHConfig(host="db1", **change)


class TestRun:
    def run(self, fleet, server, argv, **kwargs):
        return on(fleet.config_for(server), lambda host: host.run(argv, **kwargs))

    def test_run_returns_stdout_stderr_and_exit_status(self, fleet, web1):
        result = self.run(fleet, web1, ("sh", "-c", "echo out; echo err >&2; exit 3"))
        assert (result.stdout, result.stderr, result.exit_status) == (b"out\n", b"err\n", 3)
        assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
        assert result.duration_s > 0

    def test_a_process_killed_by_a_signal_has_a_negative_status(self, fleet, web1):
        assert self.run(fleet, web1, ("sh", "-c", "kill -TERM $$")).exit_status == -15

    def test_shell_metacharacters_in_argv_are_passed_literally(self, fleet, web1, tmp_path):
        payload = f"$(touch {tmp_path}/pwned); rm -rf {tmp_path} `id` | cat > x && echo *"
        result = self.run(fleet, web1, ("printf", "%s", payload))
        assert result.stdout == payload.encode()
        assert os.listdir(tmp_path) == []

    def test_a_path_full_of_shell_syntax_reaches_the_remote_side_as_data(
        self, fleet, web1, tmp_path
    ):
        name = 'it\'s a "file"; rm -rf ~ $(touch pwned) `id` \\ *\nsecond line'
        result = self.run(fleet, web1, ("touch", "--", str(tmp_path / name)))
        assert result.ok, result.stderr
        assert os.listdir(tmp_path) == [name]

    def test_bytes_that_are_not_utf8_reach_the_remote_side_unchanged(self, fleet, web1, tmp_path):
        raw = b"caf\xe9-\xff\xfe"
        path = os.fsdecode(os.fsencode(tmp_path) + b"/" + raw)
        assert self.run(fleet, web1, ("touch", path)).ok
        assert os.listdir(os.fsencode(tmp_path)) == [raw]
        echoed = self.run(fleet, web1, ("printf", "%s", os.fsdecode(raw)))
        assert echoed.stdout == raw

    def test_input_is_fed_to_stdin(self, fleet, web1):
        assert self.run(fleet, web1, ("cat",), input=b"hello\x00world\n").stdout == (
            b"hello\x00world\n"
        )

    def test_stdin_is_empty_when_no_input_is_given(self, fleet, web1):
        assert self.run(fleet, web1, ("cat",), timeout=5).stdout == b""

    def test_cwd_sets_the_working_directory(self, fleet, web1, tmp_path):
        assert self.run(fleet, web1, ("pwd",), cwd=str(tmp_path)).stdout == (
            f"{tmp_path}\n".encode()
        )

    def test_a_missing_working_directory_fails_the_command(self, fleet, web1, tmp_path):
        result = self.run(fleet, web1, ("pwd",), cwd=str(tmp_path / "absent"))
        assert result.exit_status == 127
        assert b"absent" in result.stderr

    def test_a_missing_program_is_exit_127_not_an_exception(self, fleet, web1):
        result = self.run(fleet, web1, ("healer-no-such-program", "--version"))
        assert result.exit_status == 127
        assert b"not found" in result.stderr

    def test_a_file_that_is_not_executable_is_exit_126(self, fleet, web1, tmp_path):
        script = tmp_path / "script.sh"
        script.write_text("#!/bin/sh\necho hi\n")
        script.chmod(0o644)
        assert self.run(fleet, web1, (str(script),)).exit_status == 126

    def test_empty_argv_is_refused(self, fleet, web1):
        with pytest.raises(ValueError, match="argv"):
            self.run(fleet, web1, ())

    def test_output_is_capped_and_marked_truncated_while_the_process_completes(self, fleet, web1):
        result = self.run(fleet, web1, ("head", "-c", "300000", "/dev/zero"), max_output=1000)
        assert (result.stdout, result.truncated, result.exit_status) == (b"\0" * 1000, True, 0)

    def test_stderr_is_capped_too(self, fleet, web1):
        result = self.run(fleet, web1, ("sh", "-c", "head -c 5000 /dev/zero >&2"), max_output=10)
        assert (result.stderr, result.truncated) == (b"\0" * 10, True)

    def test_output_exactly_at_the_cap_is_not_truncated(self, fleet, web1):
        result = self.run(fleet, web1, ("printf", "%s", "x" * 64), max_output=64)
        assert (result.stdout, result.truncated) == (b"x" * 64, False)


class TestRunEnvironment:
    def env(self, fleet, server, **kwargs):
        result = on(fleet.config_for(server), lambda host: host.run(("env",), **kwargs))
        return result.stdout.decode().splitlines()

    def test_a_command_sees_the_same_minimal_environment_as_a_local_one(self, fleet, web1):
        local = asyncio.run(LocalHost().run(("env",))).stdout.decode().splitlines()
        assert sorted(self.env(fleet, web1)) == sorted(local)

    def test_explicit_env_is_passed_on_top_of_a_minimal_one(self, fleet, web1):
        lines = self.env(fleet, web1, env={"APP_ENV": "production"})
        assert "APP_ENV=production" in lines
        assert any(line.startswith("PATH=") for line in lines)

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("plain", id="plain"),
            pytest.param("", id="empty"),
            pytest.param('it\'s "quoted" $(id) `id` \\ %s %% ;|&', id="shell-syntax"),
            pytest.param("two\nlines\n\n", id="trailing-newlines"),
            pytest.param(os.fsdecode(b"caf\xe9"), id="not-utf8"),
            pytest.param("pässwörd ✓", id="utf8"),
        ],
    )
    def test_an_env_value_arrives_byte_for_byte(self, fleet, web1, value):
        result = on(
            fleet.config_for(web1),
            lambda host: host.run(("printenv", "SECRET"), env={"SECRET": value}),
        )
        assert result.stdout == os.fsencode(value) + b"\n"

    def test_env_and_input_share_stdin_without_mixing(self, fleet, web1):
        result = on(
            fleet.config_for(web1),
            lambda host: host.run(
                ("sh", "-c", 'printf "%s|" "$A"; cat'), env={"A": "x\ny"}, input=b"rest\n"
            ),
        )
        assert result.stdout == b"x\ny|rest\n"

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("1ABC", id="starts-with-a-digit"),
            pytest.param("A=B", id="holds-equals"),
            pytest.param("A B", id="holds-space"),
            pytest.param("__healer_k", id="reserved"),
        ],
    )
    def test_an_unusable_env_name_is_refused(self, fleet, web1, name):
        with pytest.raises(ValueError, match="environment variable"):
            on(fleet.config_for(web1), lambda host: host.run(("true",), env={name: "x"}))

    def test_an_env_secret_never_appears_on_a_command_line(self, fleet, web1):
        canary = f"canary-{secrets.token_hex(8)}"

        async def check(host):
            running = asyncio.ensure_future(
                host.run(("sleep", "30"), env={"HEALER_SECRET": canary}, timeout=30)
            )
            # The remote sleep holds the secret in its environment: once it is there, every
            # process on the way (sshd, the login shell, the wrapper) has been started.
            pids = await eventually(
                lambda: processes_with(canary.encode(), where="environ"), what="the remote sleep"
            )
            leaked = processes_with(canary.encode(), where="cmdline")
            for pid in pids:
                os.kill(pid, 9)
            result = await running
            return leaked, result

        leaked, result = on(fleet.config_for(web1), check)
        assert leaked == []
        assert result.exit_status == -9


class TestRunTimeout:
    def test_a_timed_out_command_and_its_children_are_killed_remotely(self, fleet, web1, tmp_path):
        pid_file = tmp_path / "child.pid"
        argv = ("sh", "-c", 'sleep 300 & echo $! > "$1"; wait', "sh", str(pid_file))

        async def hang(host):
            with pytest.raises(CommandTimeoutError) as caught:
                await host.run(argv, timeout=0.5)
            after = await host.run(("echo", "still here"))
            return caught.value, after, host.round_trips

        error, after, round_trips = on(fleet.config_for(web1), hang)
        assert (error.argv, error.timeout, error.host) == (argv, 0.5, "127.0.0.2:" + str(web1.port))
        assert "timed out after 0.5 s" in str(error)
        child = int(pid_file.read_text())
        assert wait_for_exit(child), f"remote child {child} survived the timeout"
        assert after.stdout == b"still here\n"
        assert round_trips == 3  # the command, the kill, the next command

    def test_a_cancelled_command_is_killed_remotely_too(self, fleet, web1, tmp_path):
        pid_file = tmp_path / "child.pid"
        argv = ("sh", "-c", 'sleep 300 & echo $! > "$1"; wait', "sh", str(pid_file))

        async def cancel(host):
            running = asyncio.ensure_future(host.run(argv, timeout=60))
            await eventually(pid_file.exists, what="the remote command to start")
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running

        on(fleet.config_for(web1), cancel)  # close() waits for the kill
        assert pid_file.read_text().strip()
        assert wait_for_exit(int(pid_file.read_text())), "the cancelled command survived"

    def test_no_timeout_means_the_command_runs_to_the_end(self, fleet, web1):
        assert on(fleet.config_for(web1), lambda h: h.run(("sleep", "0.2"), timeout=None)).ok


def make_files(tmp_path):
    """Every kind of file a probe may meet, as (path, ...) for LocalHost and SSHHost alike."""
    (tmp_path / "package.json").write_text('{"name": "app"}\n')
    (tmp_path / "exact").write_bytes(b"b" * 10)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 3 + b"\n\n--boundary 0 0\n")
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    with open(tmp_path / "sparse-2g", "wb") as handle:
        handle.truncate(2 * 1024**3)
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link-to-file").symlink_to(tmp_path / "package.json")
    (tmp_path / "odd name; $(x)\n'q'").write_text("odd")
    raw = os.fsencode(tmp_path) + b"/caf\xe9"
    with open(raw, "wb") as handle:
        handle.write(b"latin-1 name")
    # The rest would trip an archive: links, long names, names tar might quote, sizes at a cap.
    (tmp_path / "second-link").symlink_to(tmp_path / "package.json")
    (tmp_path / "hard-a").write_text("one inode, two names")
    os.link(tmp_path / "hard-a", tmp_path / "hard-b")
    (tmp_path / ("long-" + "n" * 150)).write_text("a name longer than 100 bytes")
    deep = tmp_path / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / ("f" * 90)).write_text("a path longer than 256 bytes")
    long_raw = os.fsencode(tmp_path) + b"/\xff" + b"x" * 120
    with open(long_raw, "wb") as handle:
        handle.write(b"a long name that is not UTF-8")
    for name in ('say "hi"', "back\\slash", "-dash", "tab\there", "star*?[x]", "per%cent"):
        (tmp_path / name).write_text(name)
    (tmp_path / "at-4k").write_bytes(b"c" * 4096)
    (tmp_path / "over-4k").write_bytes(b"d" * 4097)
    names = [
        "package.json", "exact", "empty", "binary", "dir", "fifo", "sparse-2g", "loop-a",
        "dangling", "link-to-file", "odd name; $(x)\n'q'", "absent", "dir/absent/deeper",
        "package.json/not-a-dir", "second-link", "hard-a", "hard-b", "long-" + "n" * 150,
        str(deep / ("f" * 90)), 'say "hi"', "back\\slash", "-dash", "tab\there", "star*?[x]",
        "per%cent", "at-4k", "over-4k",
    ]  # fmt: skip
    system = [
        "/dev/null",
        "/proc/sys/vm/drop_caches",  # write-only: unreadable even for root
        "/proc/sys/kernel/ostype",  # procfs: says 0 bytes, holds "Linux\n"
        "/sys/devices/system/cpu/online",  # sysfs: says 4096 bytes, holds a few
    ]
    tail = [os.fsdecode(raw), os.fsdecode(long_raw), *system, ""]
    return [str(tmp_path / name) for name in names] + tail


def tar_after(tmp_path, action, *args):
    """A tar script that runs the shell command ``action`` between find and the real tar: once
    find has looked at every file (the whole list of names is in the file ``$names``), before
    tar opens one. ``args`` are added to tar's own."""
    names = shlex.quote(str(tmp_path / "tar-names"))
    cat, real = shutil.which("cat"), shlex.join([shutil.which("tar"), *args])
    return f'names={names}\n{cat} > "$names"\n{action}\nexec {real} "$@" < "$names"\n'


def bin_dir(tmp_path, tar=None):
    """A PATH for the host's scripts: sh, find, head, and ``tar`` as a script (or no tar)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("sh", "find", "head"):
        (directory / tool).symlink_to(shutil.which(tool))
    if tar is not None:
        (directory / "tar").write_text("#!/bin/sh\n" + tar)
        (directory / "tar").chmod(0o755)
    return str(directory)


class TestReadFiles:
    def read_counting(self, fleet, server, paths, max_bytes):
        """The reads and the round trips they took, on a fresh host."""

        async def read(host):
            return await host.read_files(paths, max_bytes=max_bytes), host.round_trips

        return on(fleet.config_for(server), read)

    @pytest.mark.parametrize(
        "max_bytes",
        [
            pytest.param(0, id="cap-0"),
            pytest.param(10, id="cap-10"),
            pytest.param(4096, id="cap-4k"),
        ],
    )
    def test_a_batch_reads_exactly_what_local_host_reads(self, fleet, web1, tmp_path, max_bytes):
        paths = make_files(tmp_path)
        remote, round_trips = self.read_counting(fleet, web1, paths, max_bytes)
        local = asyncio.run(LocalHost().read_files(paths, max_bytes=max_bytes))
        assert dict(remote) == dict(local)
        assert round_trips == 1  # nothing was left for a second look

    def test_the_kinds_of_failure_are_named(self, fleet, web1, tmp_path):
        paths = make_files(tmp_path)
        reads = on(fleet.config_for(web1), lambda h: h.read_files(paths, max_bytes=10))
        errors = {os.path.basename(path): reads[path].error for path in paths[:14]}
        assert errors["absent"] == "missing"
        assert errors["dir"] == "a directory"
        assert errors["fifo"] == "not a regular file"
        assert errors["loop-a"] == "too many levels of symbolic links"
        sparse = reads[str(tmp_path / "sparse-2g")]
        assert (sparse.data, sparse.size, sparse.truncated) == (b"\0" * 10, 2 * 1024**3, True)

    def test_reading_100_files_costs_the_same_round_trips_as_reading_1(self, fleet, web1, tmp_path):
        paths = []
        for i in range(100):
            (tmp_path / f"app{i}").mkdir()
            (tmp_path / f"app{i}" / "composer.json").write_text(str(i))
            paths.append(str(tmp_path / f"app{i}" / "composer.json"))

        async def count(host):
            await host.run(("true",))  # connect first: only the reads are counted
            before = host.round_trips
            one = await host.read_files(paths[:1], max_bytes=100)
            middle = host.round_trips
            hundred = await host.read_files(paths, max_bytes=100)
            return one, hundred, middle - before, host.round_trips - middle

        one, hundred, trips_for_one, trips_for_hundred = on(fleet.config_for(web1), count)
        assert trips_for_one == trips_for_hundred == 1
        assert len(one) == 1
        assert [hundred[p].data for p in paths] == [str(i).encode() for i in range(100)]

    def test_paths_too_many_for_one_command_line_are_split_into_few_batches(
        self, fleet, web1, tmp_path
    ):
        directory = tmp_path / ("d" * 200)
        directory.mkdir()
        paths = [str(directory / f"{'f' * 40}{i}") for i in range(1500)]  # ~460 KiB
        (directory / f"{'f' * 40}7").write_text("seven")

        async def read(host):
            reads = await host.read_files(paths, max_bytes=100)
            return reads, host.round_trips

        reads, round_trips = on(fleet.config_for(web1), read)
        assert len(reads) == 1500
        assert reads[paths[7]].data == b"seven"
        assert sum(read.error == "missing" for read in reads.values()) == 1499
        # sshd passes a command on as one argument of at most 128 KiB: a few full batches.
        total = sum(len(path) + 1 for path in paths)
        assert 1 < round_trips <= total // (64 * 1024) + 1

    def test_virtual_files_links_and_unreadable_files_give_their_true_answers(
        self, fleet, web1, tmp_path
    ):
        """What the comparison with LocalHost stands on, spelled out."""
        paths = make_files(tmp_path)
        reads = on(fleet.config_for(web1), lambda h: h.read_files(paths, max_bytes=4096))
        assert reads["/proc/sys/kernel/ostype"] == FileRead(
            path="/proc/sys/kernel/ostype", data=b"Linux\n", size=0
        )
        online = reads["/sys/devices/system/cpu/online"]
        assert (online.size, online.data[-1:], b"\0" in online.data) == (4096, b"\n", False)
        assert reads["/proc/sys/vm/drop_caches"].error == "permission denied"
        assert reads[str(tmp_path / "hard-b")].data == b"one inode, two names"
        assert reads[str(tmp_path / "second-link")].data == b'{"name": "app"}\n'

    @pytest.mark.parametrize(
        "max_bytes",
        [
            pytest.param(0, id="cap-0"),
            pytest.param(1, id="cap-1"),
            pytest.param(64, id="cap-64"),
        ],
    )
    def test_hundreds_of_files_around_the_cap_read_as_local_host_reads_them_in_one_round_trip(
        self, fleet, web1, tmp_path, max_bytes
    ):
        paths = []
        for i in range(300):
            path = tmp_path / f"f{i}"
            path.write_bytes(bytes([i % 256]) * (i % (max_bytes + 3)))
            paths.append(str(path))
            if i % 50 == 0:
                os.link(path, f"{path}-link")
                paths.append(f"{path}-link")

        remote, round_trips = self.read_counting(fleet, web1, paths, max_bytes)
        local = asyncio.run(LocalHost().read_files(paths, max_bytes=max_bytes))
        assert dict(remote) == dict(local)
        assert round_trips == 1

    # The host's scripts run with a PATH of our choosing: no tar at all, as on a minimal
    # container image, or a tar that fails, or one that meets a file changing under it.

    @pytest.mark.parametrize(
        "tar",
        [
            pytest.param(None, id="no-tar-at-all"),
            pytest.param(
                "echo \"tar: unrecognized option '--hard-dereference'\" >&2\nexit 1\n",
                id="a-tar-that-fails-like-busybox",
            ),
        ],
    )
    def test_without_a_working_tar_head_reads_exactly_what_local_host_reads_in_one_trip(
        self, fleet, web1, tmp_path, monkeypatch, tar
    ):
        monkeypatch.setattr(ssh_module, "_SCRIPT_ENV", {"PATH": bin_dir(tmp_path, tar=tar)})
        (tmp_path / "files").mkdir()
        paths = make_files(tmp_path / "files")
        remote, round_trips = self.read_counting(fleet, web1, paths, 10)
        local = asyncio.run(LocalHost().read_files(paths, max_bytes=10))
        assert dict(remote) == dict(local)
        assert round_trips == 1

    def test_a_file_that_vanishes_before_tar_reads_it_is_looked_at_again(
        self, fleet, web1, tmp_path, monkeypatch
    ):
        """tar fails on it, its batch-mates are read by head, and one more round trip finds
        it gone."""
        (tmp_path / "stays").write_text("stays")
        (tmp_path / "goes").write_text("goes")
        paths = [str(tmp_path / "stays"), str(tmp_path / "goes")]
        remove = shlex.join([shutil.which("rm"), paths[1]])
        tar = tar_after(tmp_path, remove)
        monkeypatch.setattr(ssh_module, "_SCRIPT_ENV", {"PATH": bin_dir(tmp_path, tar=tar)})
        reads, round_trips = self.read_counting(fleet, web1, paths, 100)
        assert reads[paths[0]] == FileRead(path=paths[0], data=b"stays", size=5)
        assert reads[paths[1]] == FileRead(path=paths[1], error="missing")
        assert round_trips == 2

    def read_through_shrinking_tar(self, fleet, web1, tmp_path, monkeypatch, *, then=""):
        """Read a file while tar finds it shrinking under it (then runs the command ``then``).

        A sysfs file plays the part (it says 4096 bytes and holds a few), archived under the
        name of the file asked for."""
        wanted = tmp_path / "config.json"
        wanted.write_text("the real content")
        lying = "/sys/devices/system/cpu/online"
        swap = f'wanted={shlex.quote(str(wanted))}\nprintf "%s\\0" {lying} > "$names"\n{then}'
        tar = tar_after(tmp_path, swap, f"--transform=s|^{lying}$|{wanted}|")
        monkeypatch.setattr(ssh_module, "_SCRIPT_ENV", {"PATH": bin_dir(tmp_path, tar=tar)})
        reads, round_trips = self.read_counting(fleet, web1, [str(wanted)], 100)
        return reads[str(wanted)], round_trips

    def test_a_file_that_shrinks_while_tar_reads_it_is_read_again_by_head(
        self, fleet, web1, tmp_path, monkeypatch
    ):
        """tar pads a file that shrank under it with zeros and says so only in its exit status."""
        read, round_trips = self.read_through_shrinking_tar(fleet, web1, tmp_path, monkeypatch)
        assert (read.data, read.size, read.truncated) == (b"the real content", 16, False)
        assert round_trips == 1

    def test_a_failed_tars_archive_is_not_used_even_for_a_file_head_then_passes_over(
        self, fleet, web1, tmp_path, monkeypatch
    ):
        """The file grows past the cap after tar, so head does not read it in that round trip:
        the next one does, rather than the zeros tar padded it with."""
        grow = 'printf %0200d 0 >> "$wanted"'
        read, round_trips = self.read_through_shrinking_tar(
            fleet, web1, tmp_path, monkeypatch, then=grow
        )
        expected = (b"the real content" + b"0" * 84, 216, True)
        assert (read.data, read.size, read.truncated) == expected
        assert round_trips == 2

    def test_a_file_that_grows_past_the_cap_before_tar_reads_it_is_cut_and_marked_truncated(
        self, fleet, web1, tmp_path, monkeypatch
    ):
        growing = tmp_path / "growing.log"
        growing.write_bytes(b"12345")
        grow = f"printf 67890 >> {shlex.quote(str(growing))}"
        tar = tar_after(tmp_path, grow)
        monkeypatch.setattr(ssh_module, "_SCRIPT_ENV", {"PATH": bin_dir(tmp_path, tar=tar)})
        reads, round_trips = self.read_counting(fleet, web1, [str(growing)], 8)
        # The size is the one find saw; the data and the cut are those of the file tar read.
        expected = FileRead(path=str(growing), data=b"12345678", size=5, truncated=True)
        assert reads[str(growing)] == expected
        assert round_trips == 1


def make_tree(root):
    """Apps nested at several depths, a pruned node_modules holding a marker, loops, odd names."""
    apps = {
        "site-a": "wp-config.php",
        "site-a/wp-content/plugins/sub": "package.json",
        "shop": "composer.json",
        "shop/vendor/lib": "composer.json",  # pruned: never a candidate
        "node/app": "package.json",
        "node/app/node_modules/dep": "package.json",  # pruned
        "deep/a/b/c/d/e": "package.json",  # below max_depth
        "odd name; $(x)\n'q'": "package.json",
        "vendor": "composer.json",  # a pruned name as a root (see the roots)
    }
    for relative, marker in apps.items():
        (root / relative).mkdir(parents=True, exist_ok=True)
        (root / relative / marker).write_text("{}")
    (root / "node/app/loop").symlink_to(root / "node")  # a symlink loop, never followed
    (root / "shop/link-to-site").symlink_to(root / "site-a")  # symlinks are entries only
    os.mkdir(os.fsencode(root) + b"/caf\xe9")
    with open(os.fsencode(root) + b"/caf\xe9/package.json", "w") as handle:
        handle.write("{}")
    crowded = root / "crowded"
    crowded.mkdir()
    for i in range(2100):
        (crowded / f"f{i:04}").touch()
    (crowded / "package.json").write_text("{}")
    (root / "public").mkdir()
    (root / "public/html").mkdir()
    (root / "public/html/index.php").write_text("<?php")
    (root / "file").write_text("not a directory")


class TestScan:
    markers = frozenset({"package.json", "composer.json", "wp-config.php", "index.php"})
    prune = frozenset({"node_modules", "vendor", ".git"})

    def roots(self, root):
        return [
            str(root),
            str(root),  # the same tree again: every directory is walked once
            str(root / "vendor"),  # named like a pruned directory: still walked as a root
            str(root / "*" / "html"),  # a glob, expanded on the remote side
            str(root / "nope-*"),  # a glob without a match: nothing, not an error
            str(root / "absent"),
            str(root / "file"),
            str(root / "file" / "below"),
            "relative/path",
            str(root / "node/app/loop"),  # a symlink as a root resolves to its target
        ]

    def test_a_scan_finds_exactly_what_local_host_finds(self, fleet, web1, tmp_path):
        make_tree(tmp_path)
        roots = self.roots(tmp_path)
        kwargs = {"markers": self.markers, "prune": self.prune, "max_depth": 4}
        remote = on(fleet.config_for(web1), lambda h: h.scan(roots, **kwargs))
        local = asyncio.run(LocalHost().scan(roots, **kwargs))
        assert remote == local
        found = {os.path.relpath(c.path, tmp_path) for c in remote.candidates}
        assert "site-a" in found
        assert "node/app" in found
        assert "vendor" in found
        assert not {"shop/vendor/lib", "node/app/node_modules/dep", "deep/a/b/c/d/e"} & found
        assert len(remote.errors) == 4  # absent, not a directory, below a file, relative

    def test_a_crowded_directory_keeps_its_markers_and_says_it_was_cut(self, fleet, web1, tmp_path):
        make_tree(tmp_path)
        kwargs = {"markers": self.markers, "prune": self.prune, "max_depth": 1}
        remote = on(fleet.config_for(web1), lambda h: h.scan([str(tmp_path)], **kwargs))
        crowded = next(c for c in remote.candidates if c.path.endswith("crowded"))
        assert crowded.truncated
        assert "package.json" in crowded.entries

    @pytest.mark.parametrize(
        "max_depth", [pytest.param(0, id="depth-0"), pytest.param(2, id="depth-2")]
    )
    def test_max_depth_limits_the_walk_as_local_host_does(self, fleet, web1, tmp_path, max_depth):
        make_tree(tmp_path)
        kwargs = {"markers": self.markers, "prune": self.prune, "max_depth": max_depth}
        remote = on(fleet.config_for(web1), lambda h: h.scan([str(tmp_path)], **kwargs))
        assert remote == asyncio.run(LocalHost().scan([str(tmp_path)], **kwargs))

    def test_all_roots_cost_one_round_trip(self, fleet, web1, tmp_path):
        make_tree(tmp_path)

        async def scan(host):
            await host.scan(
                self.roots(tmp_path), markers=self.markers, prune=self.prune, max_depth=4
            )
            return host.round_trips

        assert on(fleet.config_for(web1), scan) == 1


class TestStatAndListDir:
    def test_stat_agrees_with_local_host(self, fleet, web1, tmp_path):
        (tmp_path / "setuid").write_text("x")
        (tmp_path / "setuid").chmod(0o4755)
        (tmp_path / "dir").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "dir")
        os.mkfifo(tmp_path / "fifo")
        paths = [str(tmp_path / n) for n in ("setuid", "dir", "link", "fifo", "absent")]
        paths += [str(tmp_path / "setuid" / "below-a-file"), "/dev/null"]

        async def stat_all(host):
            return [await host.stat(path) for path in paths]

        remote = on(fleet.config_for(web1), stat_all)
        local = asyncio.run(stat_all(LocalHost()))
        assert remote == local
        assert stat.S_IMODE(remote[0].mode) == 0o4755
        assert remote[2].is_link
        assert remote[4] is None

    def test_list_dir_agrees_with_local_host(self, fleet, web1, tmp_path):
        (tmp_path / "b-dir").mkdir()
        (tmp_path / "a-file").write_text("x")
        (tmp_path / "c-link").symlink_to(tmp_path / "b-dir")
        (tmp_path / "new\nline").write_text("x")
        os.close(os.open(os.fsencode(tmp_path) + b"/caf\xe9", os.O_CREAT | os.O_WRONLY))
        remote = on(fleet.config_for(web1), lambda h: h.list_dir(str(tmp_path)))
        assert remote == asyncio.run(LocalHost().list_dir(str(tmp_path)))
        assert [e.name for e in remote][:2] == ["a-file", "b-dir"]

    def test_list_dir_of_a_symlink_to_a_directory_lists_the_target(self, fleet, web1, tmp_path):
        (tmp_path / "target").mkdir()
        (tmp_path / "target" / "inside").write_text("x")
        (tmp_path / "link").symlink_to(tmp_path / "target")
        remote = on(fleet.config_for(web1), lambda h: h.list_dir(str(tmp_path / "link")))
        assert [e.name for e in remote] == ["inside"]

    @pytest.mark.parametrize(
        ("name", "error"),
        [
            pytest.param("absent", FileNotFoundError, id="missing"),
            pytest.param("file", NotADirectoryError, id="a-file"),
            pytest.param("file/below", NotADirectoryError, id="below-a-file"),
        ],
    )
    def test_list_dir_raises_as_local_host_does(self, fleet, web1, tmp_path, name, error):
        (tmp_path / "file").write_text("x")
        path = str(tmp_path / name)
        with pytest.raises(error):
            asyncio.run(LocalHost().list_dir(path))
        with pytest.raises(error):
            on(fleet.config_for(web1), lambda h: h.list_dir(path))


class TestFacts:
    def test_facts_are_sane_and_match_this_machine(self, fleet, web1):
        remote = on(fleet.config_for(web1), lambda h: h.facts())
        local = asyncio.run(LocalHost().facts())
        assert (remote.hostname, remote.cpu_count) == (local.hostname, local.cpu_count)
        assert remote.memory_total_bytes == local.memory_total_bytes
        assert 0 < remote.memory_available_bytes <= remote.memory_total_bytes
        assert all(load >= 0 for load in remote.load_average)
        shape = {(m.mountpoint, m.fstype, m.device, m.total_bytes) for m in remote.mounts}
        assert shape == {(m.mountpoint, m.fstype, m.device, m.total_bytes) for m in local.mounts}
        root = next(m for m in remote.mounts if m.mountpoint == "/")
        assert 0 <= root.used_percent <= 100
        assert root.used_bytes is not None

    def test_listeners_and_processes_match_local_host(self, fleet, web1):
        remote = on(fleet.config_for(web1), lambda h: h.facts())
        local = asyncio.run(LocalHost().facts())
        mariadb = Listener(kind="tcp", address="127.0.0.1", port=3306)
        assert mariadb in remote.listeners
        assert mariadb in local.listeners
        # The fleet's own sshd listens, and is running, on both reads.
        sshd = Listener(kind="tcp", address=web1.address, port=web1.port)
        assert sshd in remote.listeners
        assert {"mariadbd", "sshd"} <= set(remote.processes)
        assert "mariadbd" in local.processes
        # Long-lived services are the same set either way (short-lived ones come and go).
        stable = {"mariadbd", "sshd", "postgres", "redis-server"}
        assert stable & set(remote.processes) >= stable & set(local.processes) - {"sshd"}
        tcp = {(x.address, x.port) for x in local.listeners if x.kind == "tcp"}
        assert {(x.address, x.port) for x in remote.listeners if x.kind == "tcp"} >= tcp - {
            (web1.address, web1.port)
        }
        unix = {x.path for x in local.listeners if x.kind == "unix"}
        assert {x.path for x in remote.listeners if x.kind == "unix"} >= unix
        assert list(remote.processes) == sorted(set(remote.processes))

    def test_facts_cost_one_round_trip(self, fleet, web1):
        async def facts(host):
            await host.facts()
            return host.round_trips

        assert on(fleet.config_for(web1), facts) == 1


class TestPool:
    def test_concurrent_first_uses_share_one_connection(self, fleet, web1):
        async def burst(host):
            results = await asyncio.gather(*(host.run(("true",)) for _ in range(20)))
            return results, host.connections_made

        results, connections = on(fleet.config_for(web1), burst)
        assert all(result.ok for result in results)
        assert connections == 1

    def test_many_concurrent_commands_never_exceed_max_channels(self, fleet, web1):
        async def burst(host):
            argv = ("sh", "-c", "sleep 0.1; echo $$")
            results = await asyncio.gather(*(host.run(argv) for _ in range(40)))
            return results, host.peak_channels, host.connections_made, host.round_trips

        results, peak, connections, round_trips = on(fleet.config_for(web1, max_channels=4), burst)
        assert all(result.ok for result in results)
        assert len({result.stdout for result in results}) == 40  # 40 distinct remote processes
        assert (peak, connections, round_trips) == (4, 1, 40)

    def test_a_burst_of_short_commands_is_never_refused_by_sshd(self, fleet, web1):
        """sshd frees a session a little after its channel closes: refusals are asked again."""

        async def burst(host):
            return await asyncio.gather(*(host.run(("true",)) for _ in range(200)))

        assert all(result.ok for result in on(fleet.config_for(web1), burst))

    def test_discovery_checks_and_heals_reuse_one_connection(self, fleet, web1, tmp_path):
        (tmp_path / "package.json").write_text("{}")

        async def work(host):
            await host.run(("true",))
            await host.read_files([str(tmp_path / "package.json")], max_bytes=100)
            await host.scan(
                [str(tmp_path)], markers=frozenset({"a"}), prune=frozenset(), max_depth=1
            )
            await host.stat(str(tmp_path))
            await host.list_dir(str(tmp_path))
            await host.facts()
            return host.connections_made, host.round_trips

        assert on(fleet.config_for(web1), work) == (1, 6)

    def test_a_closed_host_connects_again_on_next_use(self, fleet, web1):
        async def twice(host):
            await host.run(("true",))
            await host.close()
            result = await host.run(("echo", "again"))
            return result, host.connections_made

        result, connections = on(fleet.config_for(web1), twice)
        assert (result.stdout, connections) == (b"again\n", 2)

    def test_a_jump_host_carries_the_connection(self, fleet, web1, web2):
        config = fleet.config_for(web2, jump=fleet.config_for(web1))
        result = on(config, lambda h: h.run(("echo", "via jump")))
        assert result.stdout == b"via jump\n"


class TestForwardPort:
    @pytest.mark.mysql
    def test_a_forwarded_port_reaches_the_database_behind_the_server(self, fleet, web1):
        def select_one(port):
            connection = pymysql.connect(
                host="127.0.0.1", port=port, user="root", password="", connect_timeout=5
            )
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                    return cursor.fetchone()
            finally:
                connection.close()

        async def query(host):
            async with host.forward_port("127.0.0.1", 3306) as port:
                return port, await asyncio.to_thread(select_one, port)

        port, row = on(fleet.config_for(web1), query)
        assert port != 3306
        assert row == (1,)


class TestTrust:
    def test_an_unknown_host_key_is_refused_with_its_fingerprint(self, fleet, web1, tmp_path):
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("")
        config = fleet.config_for(web1, known_hosts=str(known_hosts))
        with pytest.raises(AuthenticationError) as caught:
            on(config, lambda h: h.run(("true",)))
        message = str(caught.value)
        assert fingerprint(web1.host_public_key) in message
        assert "ssh-ed25519" in message
        assert f"ssh-keyscan -p {web1.port} {web1.address} >> {known_hosts}" in message
        assert "trust_on_first_use" in message
        assert known_hosts.read_text() == ""

    @pytest.mark.parametrize(
        "trust_on_first_use",
        [pytest.param(False, id="strict"), pytest.param(True, id="even-with-tofu")],
    )
    def test_a_changed_host_key_is_refused(self, fleet, web1, tmp_path, trust_on_first_use):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "old")],
            check=True,
        )
        old_key = " ".join((tmp_path / "old.pub").read_text().split()[:2])
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(f"[{web1.address}]:{web1.port} {old_key}\n")
        config = fleet.config_for(
            web1, known_hosts=str(known_hosts), trust_on_first_use=trust_on_first_use
        )
        with pytest.raises(AuthenticationError, match="CHANGED") as caught:
            on(config, lambda h: h.run(("true",)))
        assert fingerprint(web1.host_public_key) in str(caught.value)
        assert str(caught.value).count(fingerprint(old_key)) == 1
        assert "ssh-keygen -R" in str(caught.value)
        assert known_hosts.read_text() == f"[{web1.address}]:{web1.port} {old_key}\n"

    def test_trust_on_first_use_accepts_records_and_remembers_an_unknown_key(
        self, fleet, web1, tmp_path
    ):
        known_hosts = tmp_path / "ssh" / "known_hosts"  # not there yet
        config = fleet.config_for(web1, known_hosts=str(known_hosts), trust_on_first_use=True)
        noted = []

        async def twice():
            first = SSHHost(config, on_first_use=noted.append)
            await first.run(("true",))
            await first.close()
            second = SSHHost(attrs.evolve(config, trust_on_first_use=False))
            await second.run(("true",))  # the key is on file now: strict mode accepts it
            await second.close()
            return first.keys_trusted_on_first_use, second.keys_trusted_on_first_use

        recorded, later = asyncio.run(twice())
        assert [(k.host, k.port, k.key_type, k.fingerprint) for k in recorded] == [
            (web1.address, web1.port, "ssh-ed25519", fingerprint(web1.host_public_key))
        ]
        assert noted == recorded
        assert later == []
        assert known_hosts.read_text() == web1.known_hosts_line + "\n"

    def test_a_first_use_the_registry_refuses_never_reaches_known_hosts(
        self, fleet, web1, tmp_path
    ):
        """The registry already trusts another key for this server: refused, and the offered
        key is not written down for the next run to accept silently."""
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("")
        config = fleet.config_for(web1, known_hosts=str(known_hosts), trust_on_first_use=True)

        def refuse(key):
            raise RuntimeError("the registry trusts another key for this server")

        with pytest.raises(AuthenticationError) as caught:
            asyncio.run(SSHHost(config, on_first_use=refuse).run(("true",)))
        assert "was not trusted: the registry trusts another key" in str(caught.value)
        assert known_hosts.read_text() == ""

    def test_a_key_the_server_does_not_accept_is_refused(self, fleet, web1, tmp_path):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")],
            check=True,
        )
        config = fleet.config_for(web1, client_keys=(str(tmp_path / "stranger"),))
        with pytest.raises(AuthenticationError, match=r"127\.0\.0\.2"):
            on(config, lambda h: h.run(("true",)))

    def test_a_client_key_that_cannot_be_read_is_an_authentication_error(
        self, fleet, web1, tmp_path
    ):
        config = fleet.config_for(web1, client_keys=(str(tmp_path / "absent"),))
        with pytest.raises(AuthenticationError, match="cannot load a client key"):
            on(config, lambda h: h.run(("true",)))


async def side_by_side(good, bad, operation=lambda h: h.run(("echo", "fine"))):
    """Run ``operation`` on a healthy and a faulty host at once; return both outcomes."""
    hosts = [SSHHost(good), SSHHost(bad)]
    try:
        return await asyncio.gather(*(operation(h) for h in hosts), return_exceptions=True)
    finally:
        for host in hosts:
            await host.close()


class TestFaults:
    def test_a_refused_connection_fails_only_its_own_host(self, fleet, web1):
        bad = fleet.config_for(web1, port=free_port("127.0.0.2"))
        good_result, error = asyncio.run(side_by_side(fleet.config_for(web1), bad))
        assert good_result.stdout == b"fine\n"
        assert isinstance(error, HostUnreachableError)
        assert "connection refused" in str(error)
        assert error.host == f"127.0.0.2:{bad.port}"

    def test_a_host_that_accepts_and_never_answers_times_out(self, fleet, web1):
        with silent_server() as sock:
            port = sock.getsockname()[1]
            bad = fleet.config_for(web1, host="127.0.0.1", port=port, connect_timeout=1.0)

            async def both():
                loop = asyncio.get_running_loop()
                started = loop.time()
                outcome = await side_by_side(fleet.config_for(web1), bad)
                return outcome, loop.time() - started

            (good_result, error), elapsed = asyncio.run(both())
        assert good_result.stdout == b"fine\n"
        assert isinstance(error, HostUnreachableError)
        assert "timed out after 1 s" in str(error)
        assert elapsed < 5

    def test_a_dead_host_costs_its_callers_one_connect_timeout_not_one_each(self, fleet, web1):
        with silent_server() as sock:
            config = fleet.config_for(web1, port=sock.getsockname()[1], host="127.0.0.1")
            config = attrs.evolve(config, connect_timeout=1.0)

            async def many(host):
                loop = asyncio.get_running_loop()
                started = loop.time()
                outcomes = await asyncio.gather(
                    *(host.run(("true",)) for _ in range(10)), return_exceptions=True
                )
                return outcomes, loop.time() - started

            outcomes, elapsed = on(config, many)
        assert all(isinstance(outcome, HostUnreachableError) for outcome in outcomes)
        assert elapsed < 3

    def test_a_wrong_user_key_fails_only_its_own_host(self, fleet, web1, web2, tmp_path):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "wrong")],
            check=True,
        )
        bad = fleet.config_for(web2, client_keys=(str(tmp_path / "wrong"),))
        good_result, error = asyncio.run(side_by_side(fleet.config_for(web1), bad))
        assert good_result.stdout == b"fine\n"
        assert isinstance(error, AuthenticationError)
        assert error.host == f"127.0.0.3:{web2.port}"

    def test_a_command_that_hangs_is_killed_and_fails_only_its_own_host(self, fleet, web1, web2):
        async def operation(host):
            if host.config.host == web2.address:
                return await host.run(("sleep", "60"), timeout=0.5)
            return await host.run(("echo", "fine"))

        good_result, error = asyncio.run(
            side_by_side(fleet.config_for(web1), fleet.config_for(web2), operation)
        )
        assert good_result.stdout == b"fine\n"
        assert isinstance(error, CommandTimeoutError)

    def test_sshd_killed_mid_command_fails_clearly_then_the_host_reconnects_once_back(
        self, fleet, web1
    ):
        crashy = fleet.start(f"crashy-{secrets.token_hex(4)}", address="127.0.0.4")
        canary = f"canary-{secrets.token_hex(8)}".encode()

        async def crash():
            host, neighbour = SSHHost(fleet.config_for(crashy)), SSHHost(fleet.config_for(web1))
            try:
                long = asyncio.ensure_future(
                    host.run(("sleep", "30"), env={"CANARY": canary.decode()})
                )
                await eventually(
                    lambda: processes_with(canary, where="environ"), what="the long command"
                )
                crashy.kill()
                outcomes = await asyncio.gather(
                    long, neighbour.run(("echo", "fine")), return_exceptions=True
                )
                try:
                    await host.run(("true",))
                except RemoteError as err:
                    while_down = err
                crashy.start()
                back = await host.run(("echo", "back"))
                return outcomes, while_down, back, host.connections_made
            finally:
                await host.close()
                await neighbour.close()

        try:
            (lost, fine), while_down, back, connections = asyncio.run(crash())
        finally:
            crashy.stop()
        assert isinstance(lost, HostUnreachableError)
        assert "while running 'sleep'" in str(lost)
        assert fine.stdout == b"fine\n"
        assert isinstance(while_down, HostUnreachableError)
        assert "reconnecting failed: connection refused" in str(while_down)
        assert back.stdout == b"back\n"
        assert connections == 2


def asyncssh_errors():
    found, todo = set(), [asyncssh.DisconnectError, asyncssh.ChannelOpenError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__name__)


class TestErrorTranslation:
    @pytest.mark.parametrize("cls", [pytest.param(c, id=c.__name__) for c in asyncssh_errors()])
    def test_every_asyncssh_connection_error_is_mapped_explicitly(self, cls):
        assert cls in _ASYNCSSH_ERRORS, f"asyncssh.{cls.__name__} has no entry in the error map"
        if cls in (asyncssh.DisconnectError, asyncssh.ChannelOpenError):
            error = cls(1, "boom")
        else:
            error = cls("boom")
        translated = translate_error("db1", error)
        assert isinstance(translated, RemoteError)
        assert type(translated) is _ASYNCSSH_ERRORS[cls]
        assert str(translated) == "db1: boom"

    @pytest.mark.parametrize(
        ("error", "kind", "words"),
        [
            pytest.param(asyncssh.PermissionDenied("no"), AuthenticationError, "no", id="denied"),
            pytest.param(asyncssh.HostKeyNotVerifiable("x"), AuthenticationError, "x", id="key"),
            pytest.param(ConnectionRefusedError(), HostUnreachableError, "refused", id="refused"),
            pytest.param(TimeoutError(), HostUnreachableError, "timed out after 3 s", id="silent"),
            pytest.param(
                socket.gaierror(-2, "Name or service not known"),
                HostUnreachableError,
                "Name or service not known",
                id="dns",
            ),
            pytest.param(
                OSError(113, "No route to host"), HostUnreachableError, "No route", id="no-route"
            ),
        ],
    )
    def test_connection_failures_become_our_errors(self, error, kind, words):
        translated = translate_error("db1", error, timeout=3.0)
        assert type(translated) is kind
        assert words in str(translated)

    def test_an_unresolvable_host_name_is_unreachable(self, fleet, web1):
        config = fleet.config_for(web1, host="no-such-host.invalid", connect_timeout=3.0)
        with pytest.raises(HostUnreachableError, match=r"no-such-host\.invalid") as caught:
            on(config, lambda h: h.run(("true",)))
        assert "cannot resolve the host name" in str(caught.value)
