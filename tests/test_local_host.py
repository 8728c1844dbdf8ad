"""LocalHost against this machine: real processes, real files, real /proc."""

from __future__ import annotations

import asyncio
import os
import select
import stat

import pytest

from universal_healer.exceptions import CommandTimeoutError, RemoteError
from universal_healer.hosts import Host, LocalHost


def run(argv, **kwargs):
    return asyncio.run(LocalHost().run(argv, **kwargs))


def wait_for_exit(pid: int, *, deadline_s: float = 5.0) -> bool:
    """Wait until ``pid`` has exited (a zombie counts: it is dead, init reaps it later).

    A pidfd becomes readable when the process exits, so this waits on the event itself
    rather than polling or sleeping.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], deadline_s)
    finally:
        os.close(fd)
    return bool(readable)


class TestLocalHostIsAHost:
    def test_local_host_satisfies_the_host_protocol(self):
        assert isinstance(LocalHost(), Host)

    def test_local_host_is_named_local(self):
        assert LocalHost().name == "local"


class TestRun:
    def test_run_returns_stdout_stderr_and_exit_status(self):
        result = run(("sh", "-c", "echo out; echo err >&2; exit 3"))
        assert (result.stdout, result.stderr, result.exit_status) == (b"out\n", b"err\n", 3)
        assert not result.ok
        assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
        assert result.duration_s > 0

    def test_a_successful_command_is_ok(self):
        result = run(("true",))
        assert result.ok
        assert result.exit_status == 0

    def test_a_process_killed_by_a_signal_has_a_negative_status(self):
        assert run(("sh", "-c", "kill -TERM $$")).exit_status == -15

    def test_shell_metacharacters_in_argv_are_passed_literally(self, tmp_path):
        payload = f"$(touch {tmp_path}/pwned); rm -rf {tmp_path} `id` | cat > x && echo *"
        result = run(("printf", "%s", payload))
        assert result.stdout == payload.encode()
        assert sorted(os.listdir(tmp_path)) == []

    def test_input_is_fed_to_stdin(self):
        assert run(("cat",), input=b"hello\x00world").stdout == b"hello\x00world"

    def test_stdin_is_empty_when_no_input_is_given(self):
        assert run(("cat",), timeout=5).stdout == b""

    def test_cwd_sets_the_working_directory(self, tmp_path):
        assert run(("pwd",), cwd=str(tmp_path)).stdout == f"{tmp_path}\n".encode()

    def test_empty_argv_is_refused(self):
        with pytest.raises(ValueError, match="argv"):
            run(())

    @pytest.mark.parametrize(
        "program",
        [
            pytest.param("/nonexistent/program", id="absolute-path"),
            pytest.param("healer-no-such-program", id="looked-up-in-path"),
        ],
    )
    def test_a_missing_program_is_exit_127_not_an_exception(self, program):
        result = run((program, "--version"))
        assert result.exit_status == 127
        assert b"not found" in result.stderr

    def test_a_file_that_is_not_executable_is_exit_126(self, tmp_path):
        script = tmp_path / "script.sh"
        script.write_text("#!/bin/sh\necho hi\n")
        script.chmod(0o644)
        assert run((str(script),)).exit_status == 126


class TestRunTimeout:
    def test_a_timed_out_command_raises_and_its_children_are_killed(self, tmp_path):
        pid_file = tmp_path / "child.pid"
        argv = ("sh", "-c", 'sleep 300 & echo $! > "$1"; wait', "sh", str(pid_file))
        with pytest.raises(CommandTimeoutError) as caught:
            run(argv, timeout=0.5)
        assert caught.value.argv == argv
        assert caught.value.timeout == 0.5
        assert caught.value.host == "local"
        assert isinstance(caught.value, RemoteError)
        child = int(pid_file.read_text())
        assert wait_for_exit(child), f"child {child} survived the timeout"

    def test_children_left_behind_by_a_finished_command_are_killed(self, tmp_path):
        pid_file = tmp_path / "child.pid"
        argv = ("sh", "-c", 'sleep 300 > /dev/null 2>&1 & echo $! > "$1"', "sh", str(pid_file))
        assert run(argv, timeout=5).ok
        child = int(pid_file.read_text())
        assert wait_for_exit(child), f"child {child} outlived its parent"

    def test_no_timeout_means_the_command_runs_to_the_end(self):
        assert run(("true",), timeout=None).ok


class TestRunOutputCap:
    def test_output_is_capped_and_marked_truncated_while_the_process_completes(self):
        result = run(("head", "-c", "300000", "/dev/zero"), max_output=1000)
        assert result.stdout == b"\0" * 1000
        assert result.truncated
        assert result.exit_status == 0  # drained to the end: no SIGPIPE, no blocked writer

    def test_stderr_is_capped_too(self):
        result = run(("sh", "-c", "head -c 5000 /dev/zero >&2"), max_output=10)
        assert result.stderr == b"\0" * 10
        assert result.truncated

    def test_output_exactly_at_the_cap_is_not_truncated(self):
        result = run(("printf", "%s", "x" * 64), max_output=64)
        assert result.stdout == b"x" * 64
        assert not result.truncated


class TestRunEnvironment:
    def test_the_healers_own_environment_does_not_leak(self, monkeypatch):
        monkeypatch.setenv("HEALER_CANARY", "canary-7f3a")
        output = run(("env",)).stdout
        assert b"HEALER_CANARY" not in output
        assert b"canary-7f3a" not in output

    def test_explicit_env_is_passed_on_top_of_a_minimal_one(self):
        lines = run(("env",), env={"APP_ENV": "production"}).stdout.decode().splitlines()
        assert "APP_ENV=production" in lines
        assert any(line.startswith("PATH=") for line in lines)


class TestReadFiles:
    def read(self, paths, max_bytes):
        return asyncio.run(LocalHost().read_files([str(p) for p in paths], max_bytes=max_bytes))

    def test_a_file_longer_than_the_cap_is_read_truncated(self, tmp_path):
        big = tmp_path / "big"
        big.write_bytes(b"a" * 100)
        read = self.read([big], 10)[str(big)]
        assert (read.data, read.size, read.truncated, read.error) == (b"a" * 10, 100, True, None)

    def test_a_file_exactly_at_the_cap_is_whole(self, tmp_path):
        exact = tmp_path / "exact"
        exact.write_bytes(b"b" * 10)
        read = self.read([exact], 10)[str(exact)]
        assert (read.data, read.truncated) == (b"b" * 10, False)

    def test_many_files_are_read_at_once_keyed_by_path(self, tmp_path):
        files = [tmp_path / f"f{i}" for i in range(3)]
        for i, path in enumerate(files):
            path.write_text(str(i))
        reads = self.read(files, 100)
        assert {path: read.data for path, read in reads.items()} == {
            str(path): str(i).encode() for i, path in enumerate(files)
        }

    def test_a_missing_file_says_missing(self, tmp_path):
        read = self.read([tmp_path / "absent"], 10)[str(tmp_path / "absent")]
        assert (read.data, read.error) == (None, "missing")

    def test_a_directory_says_so(self, tmp_path):
        read = self.read([tmp_path], 10)[str(tmp_path)]
        assert (read.data, read.error) == (None, "a directory")

    def test_a_fifo_does_not_hang(self, tmp_path):
        fifo = tmp_path / "package.json"
        os.mkfifo(fifo)
        read = self.read([fifo], 10)[str(fifo)]
        assert (read.data, read.error) == (None, "not a regular file")


class TestStat:
    def stat(self, path):
        return asyncio.run(LocalHost().stat(str(path)))

    def test_stat_reports_mode_size_and_owner(self, tmp_path):
        target = tmp_path / "wp-config.php"
        target.write_bytes(b"12345")
        target.chmod(0o640)
        info = self.stat(target)
        assert info is not None
        assert stat.S_IMODE(info.mode) == 0o640
        assert stat.S_ISREG(info.mode)
        assert (info.size, info.uid, info.is_dir, info.is_link) == (5, os.getuid(), False, False)

    def test_stat_does_not_follow_symlinks(self, tmp_path):
        (tmp_path / "target").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "target")
        info = self.stat(tmp_path / "link")
        assert info is not None
        assert (info.is_link, info.is_dir) == (True, False)

    def test_stat_of_a_directory(self, tmp_path):
        info = self.stat(tmp_path)
        assert info is not None
        assert info.is_dir

    def test_stat_of_a_missing_path_is_none(self, tmp_path):
        assert self.stat(tmp_path / "absent") is None


class TestListDir:
    def test_list_dir_is_sorted_and_tells_directories_and_links(self, tmp_path):
        (tmp_path / "b-dir").mkdir()
        (tmp_path / "a-file").write_text("x")
        (tmp_path / "c-link").symlink_to(tmp_path / "b-dir")
        entries = asyncio.run(LocalHost().list_dir(str(tmp_path)))
        assert [(e.name, e.is_dir, e.is_link) for e in entries] == [
            ("a-file", False, False),
            ("b-dir", True, False),
            ("c-link", False, True),
        ]

    def test_list_dir_of_an_empty_directory_is_empty(self, tmp_path):
        assert asyncio.run(LocalHost().list_dir(str(tmp_path))) == ()


class TestFacts:
    def test_facts_are_sane(self):
        facts = asyncio.run(LocalHost().facts())
        assert facts.hostname
        assert facts.cpu_count >= 1
        assert len(facts.load_average) == 3
        assert all(load >= 0 for load in facts.load_average)
        assert 0 < facts.memory_available_bytes <= facts.memory_total_bytes
        assert 0 < facts.memory_used_percent < 100

    def test_facts_include_the_root_filesystem(self):
        facts = asyncio.run(LocalHost().facts())
        mounts = {mount.mountpoint: mount for mount in facts.mounts}
        assert "/" in mounts
        root = mounts["/"]
        assert 0 < root.free_bytes <= root.total_bytes
        assert 0 <= root.used_percent <= 100

    def test_root_filesystem_usage_agrees_with_df(self):
        """df rounds up to a whole percent and ignores blocks reserved for root."""
        df = run(("df", "--output=pcent", "/"))
        df_percent = int(df.text.splitlines()[-1].strip().rstrip("%"))
        facts = asyncio.run(LocalHost().facts())
        root = next(mount for mount in facts.mounts if mount.mountpoint == "/")
        assert df_percent - 1 <= root.used_percent <= df_percent

    def test_facts_leave_out_pseudo_filesystems(self):
        facts = asyncio.run(LocalHost().facts())
        assert not {"proc", "sysfs", "cgroup2"} & {mount.fstype for mount in facts.mounts}

    def test_the_mount_for_a_temporary_file_is_found(self, tmp_path):
        facts = asyncio.run(LocalHost().facts())
        mount = facts.mount_for(str(tmp_path))
        assert mount is not None
        assert str(tmp_path).startswith(mount.mountpoint)
