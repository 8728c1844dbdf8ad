"""File-set backups on real files (LocalHost, and once through a real sshd), composite backups,
artifact removal, and the pure retention policy.

Every round trip compares a snapshot of the application tree taken before the backup with one
taken after the restore: each entry's type, content, mode (set-ID and sticky bits included),
owner and symlink target. The tests run as root, so they can chown to nobody (65534), mount
tiny tmpfs filesystems for the full and read-only destinations, and restore owners.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import strategies as hs
from sshfleet import SSHFleet
from universal_healer.backup import (
    BackupStrategy,
    CompositeBackup,
    FileSetBackup,
    select_for_pruning,
)
from universal_healer.exceptions import BackupError
from universal_healer.executions import BackupArtifact
from universal_healer.hosts import LocalHost
from universal_healer.hosts.ssh import SSHHost
from universal_healer.model import Application

NOBODY = 65534

# Names that break anything that passes paths through a shell, splits lines or reads options.
HOSTILE = (
    "with space",
    'quo"te',
    "it's",
    "semi;colon",
    "$(touch pwned)",
    "`touch pwned`",
    "new\nline",
    "ends with newline\n",
    "-leading-dash",
    "--option-like",
    os.fsdecode(b"bad\xffbyte"),
    "back\\slash",
    "tab\there",
    "star*glob?[x]",
    " leading space",
    "a -> b",
    "ünïcødé",
)


@contextlib.contextmanager
def backup_error(reason):
    """Expect a BackupError whose ``reason`` matches: not its whole message, which names
    temporary paths, and those hold the test's name and so any word at all."""
    with pytest.raises(BackupError) as caught:
        yield caught
    assert re.search(reason, caught.value.reason), caught.value.reason


def run(coroutine):
    return asyncio.run(coroutine)


def app_at(root: Path) -> Application:
    return Application(id="app-1", server="local", path=str(root), stack="php")


def snapshot(root: Path) -> dict[bytes, tuple]:
    """Every entry under ``root`` (``b"."`` is the root): type, mode, owner, content/target."""
    base = os.fsencode(root)
    found: dict[bytes, tuple] = {}

    def record(path: bytes, name: bytes) -> None:
        info = os.lstat(path)
        kind = stat.S_IFMT(info.st_mode)
        if stat.S_ISREG(info.st_mode):
            with open(path, "rb") as handle:
                payload = handle.read()
        elif stat.S_ISLNK(info.st_mode):
            payload = os.readlink(path)
        else:
            payload = None
        found[name] = (kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, payload)

    record(base, b".")
    for directory, dirs, files in os.walk(base):
        for name in dirs + files:
            full = os.path.join(directory, name)
            record(full, os.path.relpath(full, base))
    return found


def without(state: dict[bytes, tuple], prefix: bytes) -> dict[bytes, tuple]:
    return {k: v for k, v in state.items() if k != prefix and not k.startswith(prefix + b"/")}


def write(path: Path, data: bytes, mode: int = 0o644, owner: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, owner, owner)


def build_app(root: Path) -> None:
    """A small PHP-ish application with every kind of entry a restore must get right."""
    root.mkdir()
    write(root / "config.php", b"<?php $db = 'live';\n", 0o640, NOBODY)
    write(root / "secret.key", os.urandom(64), 0o600)
    write(root / "bin" / "run.sh", b"#!/bin/sh\nexec php -S 0:80\n", 0o755)
    write(root / "public" / "index.html", b"<h1>hello</h1>\n")
    write(root / "public" / "img" / "logo.png", bytes(range(256)) * 40)
    write(root / "public" / "cache" / "page.html", b"cached page\n")
    os.symlink("index.html", root / "public" / "current")
    os.lchown(root / "public" / "current", NOBODY, NOBODY)
    data = root / "data"
    write(data / "notes.txt", b"notes\n", 0o664, NOBODY)
    data.chmod(0o2775)  # set-group-ID: new files inherit the group
    os.chown(data, NOBODY, NOBODY)
    write(root / "untouched.txt", b"not backed up\n")


APP_PATHS = ("config.php", "secret.key", "bin", "public", "data", "later.txt")
APP_EXCLUDES = ("public/cache",)


def damage(root: Path) -> None:
    """Everything a heal gone wrong might do to the backed-up paths."""
    (root / "config.php").write_bytes(b"<?php $db = 'broken';\n")  # edited
    (root / "secret.key").chmod(0o644)  # loosened
    os.chown(root / "bin" / "run.sh", NOBODY, NOBODY)  # given away
    (root / "public" / "img" / "logo.png").unlink()  # deleted
    write(root / "public" / "new.php", b"<?php evil();\n")  # added in a backed-up dir
    (root / "public" / "index.html").unlink()  # a file replaced by a directory
    write(root / "public" / "index.html" / "inside.txt", b"surprise\n")
    (root / "public" / "current").unlink()  # a symlink pointed elsewhere
    os.symlink("/etc/passwd", root / "public" / "current")
    write(root / "later.txt", b"created after the backup\n")  # absent at backup time
    write(root / "public" / "cache" / "fresh.html", b"new cache entry\n")  # excluded: stays
    for child in (root / "data").iterdir():  # a directory replaced by a file
        child.unlink()
    (root / "data").rmdir()
    write(root / "data", b"now a file\n")


@pytest.fixture
def app_root(tmp_path):
    root = tmp_path / "site"
    build_app(root)
    return root


@pytest.fixture
def destination(tmp_path):
    return tmp_path / "backups"


def leftovers(directory: Path) -> list[str]:
    """Staging and partial directories a backup or restore should never leave behind."""
    return sorted(
        name
        for name in os.listdir(directory)
        if name.startswith(".healer-restore-") or "-partial-" in name
    )


@pytest.fixture
def tmpfs(tmp_path):
    """Mount tiny tmpfs filesystems under tmp_path; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, *, size: str = "64k", read_only: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs (these tests run as root): {done.stderr}")
        mounted.append(point)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


class TestFileSetRoundTrip:
    def test_restore_puts_every_path_back_byte_for_byte_with_mode_and_owner(
        self, app_root, destination
    ):
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)
        before = snapshot(app_root)
        host, app = LocalHost(), app_at(app_root)

        artifact = run(strategy.create(host, app, str(destination)))
        damage(app_root)
        damaged_cache = {
            k: v for k, v in snapshot(app_root).items() if k.startswith(b"public/cache")
        }
        run(strategy.restore(host, app, artifact))

        after = snapshot(app_root)
        assert without(after, b"public/cache") == without(before, b"public/cache")
        assert {k: v for k, v in after.items() if k.startswith(b"public/cache")} == damaged_cache
        assert not (app_root / "later.txt").exists()
        assert leftovers(app_root.parent) == []

    def test_the_whole_root_round_trips_with_its_own_mode_and_owner(self, app_root, destination):
        os.chown(app_root, NOBODY, NOBODY)
        app_root.chmod(0o750)
        before = snapshot(app_root)
        strategy, host, app = FileSetBackup((".",)), LocalHost(), app_at(app_root)

        artifact = run(strategy.create(host, app, str(destination)))
        damage(app_root)
        os.chown(app_root, 0, 0)
        app_root.chmod(0o777)
        run(strategy.restore(host, app, artifact))

        assert snapshot(app_root) == before
        assert leftovers(app_root.parent) == []

    def test_a_path_missing_at_backup_time_is_removed_by_restore(self, app_root, destination):
        strategy, host, app = FileSetBackup(("later.txt", "cache/x")), LocalHost(), app_at(app_root)
        artifact = run(strategy.create(host, app, str(destination)))
        write(app_root / "later.txt", b"made by the action\n")
        write(app_root / "cache" / "x" / "deep", b"also\n")

        run(strategy.restore(host, app, artifact))

        assert not (app_root / "later.txt").exists()
        assert not (app_root / "cache" / "x").exists()

    def test_a_missing_parent_of_a_nested_path_is_made_again(self, app_root, destination):
        strategy, host, app = FileSetBackup(("public/img",)), LocalHost(), app_at(app_root)
        before = snapshot(app_root / "public" / "img")
        artifact = run(strategy.create(host, app, str(destination)))
        subprocess.run(["rm", "-rf", str(app_root / "public")], check=True)

        run(strategy.restore(host, app, artifact))

        assert snapshot(app_root / "public" / "img") == before

    def test_excluded_paths_are_left_out_of_the_archive(self, app_root, destination):
        strategy = FileSetBackup(("public",), excludes=("public/cache",))
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))

        listing = subprocess.run(
            ["tar", "--list", "--file", f"{artifact.location}/files.tar"],
            capture_output=True, check=True, text=True,
        ).stdout.split("\n")  # fmt: skip
        assert "public/index.html" in listing
        assert not any("cache" in name for name in listing)

    def test_a_file_restored_over_a_file_keeps_its_place_in_one_rename(self, app_root, destination):
        """A process holding the old file open keeps reading the old inode; the path never
        vanishes: rename(2) replaced it in one step."""
        strategy, host, app = FileSetBackup(("config.php",)), LocalHost(), app_at(app_root)
        artifact = run(strategy.create(host, app, str(destination)))
        (app_root / "config.php").write_bytes(b"changed\n")
        inode_before = os.stat(app_root / "config.php").st_ino

        run(strategy.restore(host, app, artifact))

        assert os.stat(app_root / "config.php").st_ino != inode_before
        assert (app_root / "config.php").read_bytes() == b"<?php $db = 'live';\n"


class TestArtifact:
    def test_the_artifact_is_a_private_directory_inside_the_destination(
        self, app_root, destination
    ):
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))

        location = Path(artifact.location)
        assert location.parent == destination
        assert stat.S_IMODE(destination.stat().st_mode) == 0o700
        assert stat.S_IMODE(location.stat().st_mode) == 0o700
        files = sorted(os.listdir(location))
        assert files == ["files.sha256", "files.tar", "manifest.json"]
        assert all(stat.S_IMODE((location / f).stat().st_mode) == 0o600 for f in files)
        archive = (location / "files.tar").read_bytes()
        assert artifact.sha256 == hashlib.sha256(archive).hexdigest()
        assert artifact.size_bytes == sum((location / f).stat().st_size for f in files)
        assert artifact.includes == strategy.describe(app_at(app_root))
        assert leftovers(destination) == []

    def test_the_content_manifest_is_checkable_with_sha256sum(self, app_root, destination):
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))

        check = subprocess.run(
            ["sha256sum", "--check", "--strict", f"{artifact.location}/files.sha256"],
            cwd=app_root, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        assert "config.php: OK" in check.stdout

    def test_the_metadata_manifest_records_mode_owner_type_and_absent_paths(
        self, app_root, destination
    ):
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))

        manifest = json.loads(Path(artifact.location, "manifest.json").read_text())
        entries = {e["path"]: e for e in manifest["entries"]}
        assert manifest["absent"] == ["later.txt"]
        assert entries["config.php"] | {"path": None} == {
            "path": None, "type": "f", "mode": 0o640, "uid": NOBODY, "gid": NOBODY, "target": None,
        }  # fmt: skip
        assert entries["data"]["mode"] == 0o2775
        assert entries["public/current"]["type"] == "l"
        assert entries["public/current"]["target"] == "index.html"

    def test_describe_names_what_would_be_backed_up_without_touching_anything(self, tmp_path):
        strategy = FileSetBackup(("wp-config.php", "wp-content"), excludes=("wp-content/cache",))
        described = strategy.describe(app_at(tmp_path / "nowhere"))
        assert described == (
            f"{tmp_path}/nowhere/wp-config.php",
            f"{tmp_path}/nowhere/wp-content",
            f"not {tmp_path}/nowhere/wp-content/cache",
        )
        assert not (tmp_path / "nowhere").exists()


def corrupt_archive(artifact: BackupArtifact) -> None:
    path = Path(artifact.location, "files.tar")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


def tamper_hash(artifact: BackupArtifact) -> None:
    path = Path(artifact.location, "files.sha256")
    lines = path.read_bytes().split(b"\n")
    lines[0] = b"0" * 64 + lines[0][64:]
    path.write_bytes(b"\n".join(lines))


def tamper_mode(artifact: BackupArtifact) -> None:
    path = Path(artifact.location, "manifest.json")
    manifest = json.loads(path.read_text())
    manifest["entries"][1]["mode"] = 0o777
    path.write_text(json.dumps(manifest))


def drop_entry(artifact: BackupArtifact) -> None:
    path = Path(artifact.location, "manifest.json")
    manifest = json.loads(path.read_text())
    del manifest["entries"][-1]
    path.write_text(json.dumps(manifest))


def truncate_manifest(artifact: BackupArtifact) -> None:
    path = Path(artifact.location, "manifest.json")
    path.write_bytes(path.read_bytes()[:50])


def remove_hashes(artifact: BackupArtifact) -> None:
    Path(artifact.location, "files.sha256").unlink()


DAMAGE = [
    pytest.param(corrupt_archive, "files.tar has sha256", id="a-flipped-byte-in-the-archive"),
    pytest.param(tamper_hash, "content differs", id="a-changed-hash-in-files.sha256"),
    pytest.param(tamper_mode, "mode", id="a-changed-mode-in-manifest.json"),
    pytest.param(drop_entry, "not in the manifest", id="an-entry-removed-from-manifest.json"),
    pytest.param(truncate_manifest, "unreadable manifest", id="a-truncated-manifest.json"),
    pytest.param(remove_hashes, "files.sha256 is missing", id="a-missing-files.sha256"),
]


class TestVerify:
    def test_a_whole_backup_verifies(self, app_root, destination):
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))
        run(strategy.verify(LocalHost(), artifact))

    @pytest.mark.parametrize(("spoil", "reason"), DAMAGE)
    def test_verify_detects_damage(self, app_root, destination, spoil, reason):
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))
        spoil(artifact)

        with pytest.raises(BackupError) as caught:
            run(strategy.verify(LocalHost(), artifact))

        assert reason in caught.value.reason
        assert caught.value.host == "local"
        assert caught.value.location == artifact.location

    def test_an_artifact_with_another_digest_is_refused(self, app_root, destination):
        strategy = FileSetBackup(("config.php",))
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))
        with backup_error("damaged"):
            run(strategy.verify(LocalHost(), BackupArtifact(
                location=artifact.location, size_bytes=1, sha256="0" * 64,
            )))  # fmt: skip

    @pytest.mark.parametrize(("spoil", "reason"), DAMAGE)
    def test_restore_refuses_a_damaged_backup_without_touching_the_app(
        self, app_root, destination, spoil, reason
    ):
        strategy, host, app = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES), LocalHost(), None
        app = app_at(app_root)
        artifact = run(strategy.create(host, app, str(destination)))
        damage(app_root)
        damaged = snapshot(app_root)
        spoil(artifact)

        with backup_error("damaged"):
            run(strategy.restore(host, app, artifact))

        assert snapshot(app_root) == damaged
        assert leftovers(app_root.parent) == []


class TestHostileNames:
    def test_odd_names_round_trip_as_paths_and_inside_a_directory(self, tmp_path, destination):
        root = tmp_path / "odd"
        for name in HOSTILE:
            write(root / name, f"top {name!r}\n".encode(errors="surrogateescape"), 0o640)
            write(root / "inside" / name, b"inner\n", 0o600, NOBODY)
        os.symlink(HOSTILE[1], root / "inside" / "link to odd")
        before = snapshot(root)
        strategy = FileSetBackup((*HOSTILE, "inside"), excludes=(f"inside/{HOSTILE[4]}",))
        host, app = LocalHost(), app_at(root)

        artifact = run(strategy.create(host, app, str(destination)))
        run(strategy.verify(host, artifact))
        for name in HOSTILE:
            (root / name).write_bytes(b"changed\n")
            (root / "inside" / name).chmod(0o666)
        run(strategy.restore(host, app, artifact))

        excluded = os.fsencode(f"inside/{HOSTILE[4]}")
        after = snapshot(root)
        assert without(after, excluded) == without(before, excluded)
        assert after[excluded][1] == 0o666  # excluded: left as the action made it
        # Had a name reached a shell, "pwned" would be in some command's working directory.
        places = (Path.cwd(), Path("/"), root, root / "inside", tmp_path, destination)
        assert not [p for p in places if (p / "pwned").exists()]
        assert not list(tmp_path.rglob("pwned"))

    @pytest.mark.parametrize("name", [pytest.param(n, id=repr(n)) for n in HOSTILE])
    def test_an_odd_application_root_works(self, tmp_path, destination, name):
        root = tmp_path / name
        write(root / "index.php", b"<?php\n")
        before = snapshot(root)
        strategy, host, app = FileSetBackup((".",)), LocalHost(), app_at(root)

        artifact = run(strategy.create(host, app, str(destination / name)))
        (root / "index.php").write_bytes(b"broken")
        run(strategy.restore(host, app, artifact))

        assert snapshot(root) == before


class TestUnwritableDestination:
    def test_a_full_destination_is_a_backup_error_that_leaves_nothing_behind(self, app_root, tmpfs):
        write(app_root / "public" / "big.bin", os.urandom(256 * 1024))
        full = tmpfs("full", size="64k")
        before = snapshot(app_root)
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)

        with pytest.raises(BackupError) as caught:
            run(strategy.create(LocalHost(), app_at(app_root), str(full / "backups")))

        # GNU tar says "Wrote only 4096 of 10240 bytes" or "No space left on device".
        assert "archiving: " in caught.value.reason
        assert caught.value.location == str(full / "backups")
        assert os.listdir(full) == []
        assert snapshot(app_root) == before

    def test_a_full_existing_destination_keeps_only_what_it_had(self, app_root, tmpfs):
        write(app_root / "public" / "big.bin", os.urandom(256 * 1024))
        full = tmpfs("full", size="64k")
        write(full / "older-backup", b"kept\n")

        with backup_error("archiving"):
            run(FileSetBackup(("public",)).create(LocalHost(), app_at(app_root), str(full)))

        assert os.listdir(full) == ["older-backup"]

    @pytest.mark.parametrize(
        "subdirectory", [pytest.param("", id="the-mount-itself"), pytest.param("x", id="below-it")]
    )
    def test_a_read_only_destination_is_a_backup_error(self, app_root, tmpfs, subdirectory):
        read_only = tmpfs("ro", read_only=True)
        before = snapshot(app_root)
        destination = str(read_only / subdirectory) if subdirectory else str(read_only)

        with pytest.raises(BackupError) as caught:
            run(FileSetBackup(APP_PATHS).create(LocalHost(), app_at(app_root), destination))

        assert "Read-only file system" in caught.value.reason
        assert os.listdir(read_only) == []
        assert snapshot(app_root) == before

    @pytest.mark.parametrize(
        ("root", "destination_name", "message"),
        [
            pytest.param("relative/app", "/tmp/x", "the application root", id="relative-root"),
            pytest.param(None, "relative/backups", "the backup destination", id="relative-dest"),
        ],
    )
    def test_relative_paths_are_a_backup_error(self, app_root, root, destination_name, message):
        app = app_at(app_root) if root is None else Application(
            id="a", server="local", path=root, stack="php"
        )  # fmt: skip
        with backup_error(message):
            run(FileSetBackup(("config.php",)).create(LocalHost(), app, destination_name))

    def test_a_missing_application_root_is_a_backup_error(self, tmp_path, destination):
        with backup_error("application root"):
            run(
                FileSetBackup(("x",)).create(
                    LocalHost(), app_at(tmp_path / "gone"), str(destination)
                )
            )
        assert not destination.exists()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = SSHFleet(tmp_path_factory.mktemp("sshfleet"))
    yield fleet
    fleet.stop_all()


class TestOverSSH:
    def test_a_round_trip_through_a_real_sshd_restores_everything(
        self, fleet, app_root, destination
    ):
        server = fleet.start("backup1", address="127.0.0.4")
        for name in HOSTILE[:8]:
            write(app_root / "public" / name, b"odd\n", 0o600, NOBODY)
        strategy = FileSetBackup(APP_PATHS, excludes=APP_EXCLUDES)
        before = snapshot(app_root)
        app = app_at(app_root)

        async def main():
            host = SSHHost(fleet.config_for(server))
            try:
                artifact = await strategy.create(host, app, str(destination))
                await strategy.verify(host, artifact)
                damage(app_root)
                await strategy.restore(host, app, artifact)
                return artifact
            finally:
                await host.close()

        artifact = run(main())

        after = snapshot(app_root)
        assert without(after, b"public/cache") == without(before, b"public/cache")
        assert artifact.location.startswith(f"{destination}/files-")
        # The same artifact, read locally: SSH and local hosts make the same backups.
        run(strategy.verify(LocalHost(), artifact))

    def test_an_unreachable_host_is_a_backup_error(self, fleet, app_root, destination):
        config = fleet.config_for(fleet.start("backup2", address="127.0.0.5"))
        fleet.servers["backup2"].stop()
        strategy = FileSetBackup(("config.php",))

        async def main():
            host = SSHHost(config)
            try:
                await strategy.create(host, app_at(app_root), str(destination))
            finally:
                await host.close()

        with pytest.raises(BackupError) as caught:
            run(main())
        assert caught.value.host == config.address
        assert "refused" in caught.value.reason
        assert not destination.exists()


class FailingBackup(BackupStrategy):
    name = "failing"

    async def create(self, host, app, destination):
        raise BackupError("this part always fails", host=host.name, location=destination)

    async def verify(self, host, artifact):
        raise NotImplementedError

    async def restore(self, host, app, artifact):
        raise NotImplementedError


class TestComposite:
    def test_parts_are_taken_and_restored_together(self, app_root, destination):
        strategy = CompositeBackup(
            (FileSetBackup(("config.php", "secret.key", "bin")), FileSetBackup(("public", "data")))
        )
        before = snapshot(app_root)
        host, app = LocalHost(), app_at(app_root)

        artifact = run(strategy.create(host, app, str(destination)))
        run(strategy.verify(host, artifact))
        damage(app_root)
        (app_root / "later.txt").unlink()
        run(strategy.restore(host, app, artifact))

        assert snapshot(app_root) == before
        index = Path(artifact.location, "index.json").read_bytes()
        assert artifact.sha256 == hashlib.sha256(index).hexdigest()
        assert [p["strategy"] for p in json.loads(index)["parts"]] == ["files", "files"]
        assert artifact.includes == strategy.describe(app)

    def test_when_one_part_fails_the_others_are_removed(self, app_root, destination):
        strategy = CompositeBackup((FileSetBackup(("public",)), FailingBackup()))

        with backup_error("always fails"):
            run(strategy.create(LocalHost(), app_at(app_root), str(destination)))

        assert not destination.exists()

    def test_a_damaged_part_fails_verification_and_restore_touches_nothing(
        self, app_root, destination
    ):
        strategy = CompositeBackup((FileSetBackup(("config.php",)), FileSetBackup(("public",))))
        host, app = LocalHost(), app_at(app_root)
        artifact = run(strategy.create(host, app, str(destination)))
        second = json.loads(Path(artifact.location, "index.json").read_text())["parts"][1]
        corrupt_archive(BackupArtifact(
            location=f"{artifact.location}/{second['name']}", size_bytes=0, sha256="",
        ))  # fmt: skip
        damage(app_root)
        damaged = snapshot(app_root)

        with backup_error("damaged"):
            run(strategy.verify(host, artifact))
        with backup_error("damaged"):
            run(strategy.restore(host, app, artifact))
        assert snapshot(app_root) == damaged

    def test_a_tampered_index_is_refused(self, app_root, destination):
        strategy = CompositeBackup((FileSetBackup(("config.php",)),))
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))
        Path(artifact.location, "index.json").write_text('{"format": 1}')

        with backup_error(r"index\.json"):
            run(strategy.verify(LocalHost(), artifact))


class TestRemove:
    def test_remove_deletes_the_artifact_and_is_idempotent(self, app_root, destination):
        strategy = FileSetBackup(("public",))
        artifact = run(strategy.create(LocalHost(), app_at(app_root), str(destination)))

        run(strategy.remove(LocalHost(), artifact))
        run(strategy.remove(LocalHost(), artifact))

        assert os.listdir(destination) == []

    @pytest.mark.parametrize(
        "location", [pytest.param("/", id="root"), pytest.param("relative/dir", id="relative")]
    )
    def test_remove_refuses_a_location_that_is_not_below_the_root(self, location):
        artifact = BackupArtifact(location=location, size_bytes=0, sha256="0" * 64)
        with backup_error("refusing"):
            run(FileSetBackup(("x",)).remove(LocalHost(), artifact))


class TestConfiguration:
    @pytest.mark.parametrize(
        ("paths", "excludes", "message"),
        [
            pytest.param((), (), "at least one path", id="no-paths"),
            pytest.param(("/etc/passwd",), (), "relative", id="an-absolute-path"),
            pytest.param(("../other",), (), "inside the application root", id="climbing-out"),
            pytest.param(("a", "a/b"), (), "overlap", id="overlapping-paths"),
            pytest.param((".", "a"), (), "overlap", id="the-root-and-a-path"),
            pytest.param(("a",), ("b/c",), "not inside", id="an-exclude-outside-the-paths"),
            pytest.param(("a",), ("a",), "not inside", id="an-exclude-equal-to-a-path"),
        ],
    )
    def test_bad_paths_are_refused_on_construction(self, paths, excludes, message):
        with pytest.raises(ValueError, match=message):
            FileSetBackup(paths, excludes=excludes)

    def test_a_backup_failure_is_a_backup_error_with_host_location_and_reason(self):
        err = BackupError("disk full", host="web1", location="/var/backups/x")
        assert isinstance(err, BackupError)
        assert (err.host, err.location, err.reason) == ("web1", "/var/backups/x", "disk full")
        assert str(err) == "web1: disk full [/var/backups/x]"

    def test_paths_are_normalised(self):
        assert FileSetBackup(("./a//b/", "c/../d")).paths == ("a/b", "d")

    def test_a_strategy_without_every_method_cannot_be_made(self):
        class Incomplete(BackupStrategy):
            name = "incomplete"

        with pytest.raises(TypeError):
            Incomplete()


# --------------------------------------------------------------------------------------------
# Retention: pure, so hypothesis drives it.

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def newest(records, keep_last):
    """The ids of each application's newest ``keep_last`` backups still present."""
    kept = set()
    for app_id in {r.app_id for r in records}:
        mine = [r for r in records if r.app_id == app_id and r.pruned_at is None]
        mine.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        kept |= {r.id for r in mine[:keep_last]}
    return kept


pruning_cases = given(
    records=hs.backup_records(now=NOW),
    keep_last=st.integers(min_value=0, max_value=5),
    max_age=st.integers(min_value=0, max_value=24 * 30).map(lambda h: dt.timedelta(hours=h)),
    protected=st.sets(hs.backup_ids(), max_size=5),
)


class TestSelectForPruning:
    @pruning_cases
    def test_the_newest_keep_last_of_each_application_are_never_pruned(
        self, records, keep_last, max_age, protected
    ):
        pruned = select_for_pruning(
            records, keep_last=keep_last, max_age=max_age, now=NOW,
            protected_ids=frozenset(protected),
        )  # fmt: skip
        assert not {r.id for r in pruned} & newest(records, keep_last)

    @pruning_cases
    def test_a_protected_backup_is_never_pruned(self, records, keep_last, max_age, protected):
        pruned = select_for_pruning(
            records, keep_last=keep_last, max_age=max_age, now=NOW,
            protected_ids=frozenset(protected),
        )  # fmt: skip
        assert not {r.id for r in pruned} & protected

    @pruning_cases
    def test_everything_pruned_is_older_than_max_age_and_not_yet_pruned(
        self, records, keep_last, max_age, protected
    ):
        pruned = select_for_pruning(
            records, keep_last=keep_last, max_age=max_age, now=NOW,
            protected_ids=frozenset(protected),
        )  # fmt: skip
        assert all(NOW - r.created_at > max_age and r.pruned_at is None for r in pruned)

    @pruning_cases
    def test_every_old_unprotected_backup_beyond_keep_last_is_pruned(
        self, records, keep_last, max_age, protected
    ):
        pruned = select_for_pruning(
            records, keep_last=keep_last, max_age=max_age, now=NOW,
            protected_ids=frozenset(protected),
        )  # fmt: skip
        expected = {
            r.id
            for r in records
            if r.pruned_at is None
            and NOW - r.created_at > max_age
            and r.id not in protected
            and r.id not in newest(records, keep_last)
        }
        assert {r.id for r in pruned} == expected
        assert list(pruned) == sorted(pruned, key=lambda r: (r.created_at, r.app_id, r.id))

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            pytest.param({"keep_last": -1}, "keep_last", id="negative-keep-last"),
            pytest.param({"max_age": dt.timedelta(-1)}, "max_age", id="negative-max-age"),
            pytest.param({"now": dt.datetime(2026, 1, 1)}, "aware", id="naive-now"),  # noqa: DTZ001
        ],
    )
    def test_nonsense_settings_are_refused(self, changes, message):
        settings = {"keep_last": 1, "max_age": dt.timedelta(days=1), "now": NOW} | changes
        with pytest.raises(ValueError, match=message):
            select_for_pruning((), **settings)
