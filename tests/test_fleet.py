"""Fleets against several real OpenSSH servers on loopback (tests/sshfleet.py), each with its own
copy of the sample apps: discovery and diagnosis across them at once, the round trips they
cost, and faults that must fail one host's work and leave the others' intact."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import attrs
import pytest

from sshfleet import SSHFleet, free_port, processes_with
from universal_healer._fleet_host import BatchingHost, probe_apps
from universal_healer.checks import DiagnosticCheck, HostQuery
from universal_healer.diagnosis import diagnose
from universal_healer.discovery import DiscoveryReport, discover
from universal_healer.exceptions import CommandTimeoutError, ConfigurationError
from universal_healer.fleet import (
    Fleet,
    HostFailure,
    diagnose_fleet,
    discover_fleet,
    host_for,
    ssh_config_for,
)
from universal_healer.hookspecs import hookimpl
from universal_healer.hosts import LocalHost, SSHHost
from universal_healer.inventory import ServerKind, ServerSpec
from universal_healer.model import Application, CheckCategory, HealthStatus, RiskLevel
from universal_healer.plugins import build_plugin_manager
from universal_healer.registry import open_registry

EXAMPLES = Path(__file__).parent.parent / "examples" / "apps"
SAMPLE_STACKS = {
    "express-api": "express",
    "laravel-app": "laravel",
    "monorepo/backend": "express",
    "monorepo/frontend": "nextjs",
    "nextjs-app": "nextjs",
    "node-worker": "nodejs",
    "php-site": "php",
    "wordpress-site": "wordpress",
}
HOSTS = ("web1", "web2", "web3")


@pytest.fixture(scope="module")
def manager():
    return build_plugin_manager(disabled=())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = SSHFleet(tmp_path_factory.mktemp("sshfleet"))
    yield fleet
    fleet.stop_all()


@pytest.fixture(scope="module")
def servers(fleet):
    """Three servers on their own loopback addresses."""
    return {name: fleet.start(name, address=f"127.0.0.{i + 2}") for i, name in enumerate(HOSTS)}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Each host's own copy of the sample apps (the hosts share this machine's disk)."""
    base = tmp_path_factory.mktemp("trees")
    for name in HOSTS:
        shutil.copytree(EXAMPLES, base / name / "apps")
    return {name: base / name / "apps" for name in HOSTS}


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A tree of 100 copies of one app."""
    base = tmp_path_factory.mktemp("many")
    for i in range(100):
        shutil.copytree(EXAMPLES / "laravel-app", base / f"site-{i:03}")
    return base


def spec_for(fleet, server, root, **changes) -> ServerSpec:
    return ServerSpec(
        name=server.name,
        address=server.address,
        port=server.port,
        username="root",
        client_keys=(str(fleet.user_key),),
        known_hosts=str(fleet.known_hosts),
        search_paths=(str(root),),
        **changes,
    )


@pytest.fixture
def web2(fleet, servers):
    return fleet, servers["web2"]


@pytest.fixture
def specs(fleet, servers, trees):
    return [spec_for(fleet, servers[name], trees[name]) for name in HOSTS]


def apps_of(reports) -> list[Application]:
    """Registry-like applications for what discovery found."""
    return [
        Application(id=str(uuid.uuid4()), server=name, path=found.root, stack=found.stack)
        for name, report in reports.items()
        if isinstance(report, DiscoveryReport)
        for found in report.apps
    ]


def run_fleet(specs, work, **options):
    """Run ``work(fleet)`` on a fleet of ``specs`` in a fresh event loop, closing it after."""

    async def main():
        async with Fleet.of(specs, connect_timeout=options.pop("connect_timeout", 5.0)) as fleet:
            return await work(fleet), fleet.round_trips()

    return asyncio.run(main())


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def silent_listener():
    """A TCP server on loopback that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


class TestHostFor:
    def test_a_local_server_becomes_this_machine(self):
        host = host_for(ServerSpec(name="local", kind=ServerKind.LOCAL))
        assert isinstance(host, LocalHost)
        assert host.name == "local"

    def test_an_ssh_server_becomes_an_ssh_host_configured_from_the_spec(self):
        spec = ServerSpec(
            name="web-9",
            address="192.0.2.9",
            port=2222,
            username="deploy",
            client_keys=("/keys/id",),
            known_hosts="/keys/known_hosts",
            password="canary-pw-1",  # noqa: S106 - a canary
            trust_on_first_use=True,
            max_channels=4,
        )
        host = host_for(spec)
        assert isinstance(host, SSHHost)
        assert host.name == "web-9"
        config = host.config
        assert (config.host, config.port, config.username) == ("192.0.2.9", 2222, "deploy")
        assert (config.client_keys, config.known_hosts) == (("/keys/id",), "/keys/known_hosts")
        assert (config.password, config.trust_on_first_use, config.max_channels) == (
            "canary-pw-1",
            True,
            4,
        )
        assert "canary-pw-1" not in repr(host)

    def test_a_jump_host_is_looked_up_by_name(self):
        bastion = ServerSpec(name="bastion", address="192.0.2.1", username="hop")
        spec = ServerSpec(name="web-9", address="10.0.0.9", jump="bastion")
        config = ssh_config_for(spec, resolve={"bastion": bastion}.__getitem__)
        assert config.jump is not None
        assert (config.jump.host, config.jump.username) == ("192.0.2.1", "hop")

    @pytest.mark.parametrize(
        ("jump", "message"),
        [
            pytest.param("web-9", "names itself", id="itself"),
            pytest.param("nowhere", "cannot be used", id="unknown"),
            pytest.param("here", "not an SSH server", id="local"),
            pytest.param("inner", "one jump host is supported", id="nested"),
        ],
    )
    def test_a_jump_host_that_cannot_be_used_is_a_configuration_error(self, jump, message):
        known = {
            "here": ServerSpec(name="here", kind=ServerKind.LOCAL),
            "inner": ServerSpec(name="inner", address="192.0.2.2", jump="outer"),
        }

        def resolve(name):
            if name not in known:
                raise ConfigurationError(f"no server called {name!r}")
            return known[name]

        spec = ServerSpec(name="web-9", address="10.0.0.9", jump=jump)
        with pytest.raises(ConfigurationError, match=message):
            host_for(spec, resolve=resolve)

    def test_a_fleet_keeps_a_misconfigured_server_as_a_problem_of_its_own(self):
        good = ServerSpec(name="good", address="192.0.2.3")
        bad = ServerSpec(name="bad", address="192.0.2.4", jump="missing")
        fleet = Fleet.of([good, bad])
        assert set(fleet.hosts) == {"good"}
        assert "jump host 'missing'" in fleet.problems["bad"]
        with pytest.raises(ConfigurationError, match="missing"):
            fleet.host("bad")


class TestDiscoveryAcrossTheFleet:
    def test_each_host_reports_its_own_apps_with_their_stacks(self, specs, manager, trees):
        reports, _ = run_fleet(specs, lambda fleet: discover_fleet(fleet, manager, specs))
        assert list(reports) == list(HOSTS)
        for name, report in reports.items():
            assert isinstance(report, DiscoveryReport), report
            found = {Path(a.root).relative_to(trees[name]).as_posix(): a.stack for a in report.apps}
            assert found == SAMPLE_STACKS
            assert report.errors == ()

    def test_discovery_over_ssh_finds_what_local_discovery_finds(self, specs, manager, trees):
        reports, _ = run_fleet(specs[:1], lambda fleet: discover_fleet(fleet, manager, specs[:1]))
        # discover_fleet leaves host services out by default; so does this, to compare files.
        local = asyncio.run(discover(LocalHost(), manager, [str(trees["web1"])], services=False))
        remote = reports["web1"]
        assert [(a.root, a.stack, a.outcome.evidence) for a in remote.apps] == [
            (a.root, a.stack, a.outcome.evidence) for a in local.apps
        ]
        assert remote.skipped == local.skipped

    def test_discovery_costs_the_same_round_trips_on_every_host(self, specs, manager):
        _, trips = run_fleet(specs, lambda fleet: discover_fleet(fleet, manager, specs))
        # One scan, then one read per size cap of the probe files.
        assert set(trips) == set(HOSTS)
        assert len(set(trips.values())) == 1
        assert next(iter(trips.values())) <= 4


class TestDiagnosisAcrossTheFleet:
    def test_every_app_of_every_host_is_diagnosed(self, specs, manager):
        async def work(fleet):
            reports = await discover_fleet(fleet, manager, specs)
            apps = apps_of(reports)
            return apps, await diagnose_fleet(fleet, manager, apps)

        (apps, outcome), _ = run_fleet(specs, work)
        assert outcome.failures == ()
        assert sorted(d.app.id for d in outcome.diagnoses) == sorted(a.id for a in apps)
        assert len(apps) == len(HOSTS) * len(SAMPLE_STACKS)
        assert all(d.health_status is not HealthStatus.UNKNOWN for d in outcome.diagnoses)

    def test_fleet_diagnosis_over_ssh_agrees_with_local_diagnosis(self, specs, manager):
        """The batched probes and stats give the checks exactly what SSHHost and LocalHost
        would (load and free space may move between the two runs: those are left out)."""

        async def work(fleet):
            apps = apps_of(await discover_fleet(fleet, manager, specs[:1]))
            return await diagnose_fleet(fleet, manager, apps)

        outcome, _ = run_fleet(specs[:1], work)

        async def locally(app):
            return await diagnose(LocalHost(), attrs.evolve(app, server="local"), manager)

        for remote in outcome.diagnoses:
            local = asyncio.run(locally(remote.app))
            assert [r.check for r in remote.results] == [r.check for r in local.results]
            remote_permissions = next(r for r in remote.results if r.check == "file_permissions")
            local_permissions = next(r for r in local.results if r.check == "file_permissions")
            assert (remote_permissions.status, remote_permissions.message) == (
                local_permissions.status,
                local_permissions.message,
            ), remote.app.path
            assert dict(remote_permissions.details) == dict(local_permissions.details)


class TestRoundTrips:
    def count(self, fleet, server, work):
        async def main():
            host = SSHHost(fleet.config_for(server), name=server.name)
            try:
                await host.facts()  # connect first: the connection is not a round trip anyway
                before = host.round_trips
                await work(host)
                return host.round_trips - before
            finally:
                await host.close()

        return asyncio.run(main())

    def test_probing_100_apps_takes_no_more_round_trips_than_probing_1(
        self, fleet, servers, manager, many
    ):
        roots = sorted(str(path) for path in many.iterdir())

        def probing(count):
            async def work(host):
                probes = await probe_apps(BatchingHost(host, batch=True), manager, roots[:count])
                assert len(probes) == count
                assert all(p.text("artisan") is not None for p in probes.values())

            return work

        one = self.count(fleet, servers["web1"], probing(1))
        hundred = self.count(fleet, servers["web1"], probing(100))
        assert hundred <= one
        assert one <= 4  # one listing, one read per size cap

    def test_discovering_100_apps_takes_no_more_round_trips_than_discovering_1(
        self, fleet, servers, manager, many, tmp_path
    ):
        shutil.copytree(EXAMPLES / "laravel-app", tmp_path / "site-000")
        one = self.count(
            fleet,
            servers["web1"],
            lambda host: discover(host, manager, [str(tmp_path)], services=False),
        )
        hundred = self.count(
            fleet,
            servers["web1"],
            lambda host: discover(host, manager, [str(many)], services=False),
        )
        assert hundred <= one

    def test_diagnosing_100_apps_takes_barely_more_round_trips_than_diagnosing_1(
        self, fleet, servers, manager, many
    ):
        """Facts, probes and stats are batched per host, and the file_permissions check's
        ``find`` is one host-wide query for up to 32 roots, primed for every app up front."""
        roots = sorted(str(path) for path in many.iterdir())
        apps = [
            Application(id=str(uuid.uuid4()), server="web1", path=root, stack="laravel")
            for root in roots
        ]

        def diagnosing(count):
            async def work(host):
                outcome = await diagnose_fleet(Fleet(hosts={"web1": host}), manager, apps[:count])
                assert outcome.failures == ()
                assert len(outcome.diagnoses) == count

            return work

        one = self.count(fleet, servers["web1"], diagnosing(1))
        hundred = self.count(fleet, servers["web1"], diagnosing(100))
        assert one <= 6, one  # facts, listing, a read per size cap, stats, the find
        assert hundred <= one + 100 // 32, (one, hundred)


class TestFaults:
    """Each fault fails its own host with a clear message; the other hosts' work is intact."""

    def discover_with(self, specs, manager, bad, **options):
        everyone = [*specs, bad]
        reports, _ = run_fleet(
            everyone, lambda fleet: discover_fleet(fleet, manager, everyone), **options
        )
        for spec in specs:
            report = reports[spec.name]
            assert isinstance(report, DiscoveryReport), report
            assert len(report.apps) == len(SAMPLE_STACKS)
        failure = reports[bad.name]
        assert isinstance(failure, HostFailure), failure
        return failure

    def test_connection_refused(self, specs, manager):
        bad = ServerSpec(name="refused", address="127.0.0.1", port=free_port())
        failure = self.discover_with(specs, manager, bad)
        assert "connection refused" in failure.error

    def test_a_host_that_accepts_tcp_and_never_answers_times_out(self, specs, manager):
        with silent_listener() as sock:
            port = sock.getsockname()[1]
            bad = ServerSpec(name="silent", address="127.0.0.1", port=port)
            failure = self.discover_with(specs, manager, bad, connect_timeout=1.0)
        assert "timed out after 1 s" in failure.error

    def test_a_wrong_user_key_is_refused(self, specs, manager, fleet, servers, tmp_path):
        stranger = tmp_path / "stranger"
        keygen(stranger)
        bad = attrs.evolve(
            spec_for(fleet, servers["web1"], "/srv"), name="stranger", client_keys=(str(stranger),)
        )
        failure = self.discover_with(specs, manager, bad)
        assert "Permission denied" in failure.error or "permission denied" in failure.error

    @pytest.mark.parametrize(
        "trust_on_first_use",
        [pytest.param(False, id="strict"), pytest.param(True, id="even-with-tofu")],
    )
    def test_a_changed_host_key_is_refused_never_accepted(
        self, specs, manager, web2, tmp_path, trust_on_first_use
    ):
        fleet, server = web2
        impostor = tmp_path / "impostor"
        keygen(impostor)
        key = impostor.with_suffix(".pub").read_text().split()[:2]
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(f"[{server.address}]:{server.port} {' '.join(key)}\n")
        before = known_hosts.read_text()
        bad = attrs.evolve(
            spec_for(fleet, server, "/srv"),
            name="changed",
            known_hosts=str(known_hosts),
            trust_on_first_use=trust_on_first_use,
        )
        failure = self.discover_with(specs, manager, bad)
        assert "CHANGED" in failure.error
        assert "ssh-keygen -R" in failure.error
        assert known_hosts.read_text() == before

    def test_sshd_killed_in_the_middle_of_a_diagnosis(self, fleet, specs, manager, tmp_path):
        """Apps finished before the crash keep their diagnoses; the rest are named as not
        diagnosed, with the reason; the other hosts are untouched."""
        doomed = fleet.start(f"doomed-{uuid.uuid4().hex[:6]}", address="127.0.0.9")
        root = tmp_path / "apps"
        for i in range(3):
            shutil.copytree(EXAMPLES, root / f"copy-{i}")
        spec = spec_for(fleet, doomed, root)
        everyone = [*specs, spec]

        async def work(fleet_):
            apps = apps_of(await discover_fleet(fleet_, manager, everyone))

            def done(app):
                if app.server == doomed.name and doomed.running:
                    doomed.kill()

            return apps, await diagnose_fleet(
                fleet_, manager, apps, apps_per_host=2, on_app_done=done
            )

        try:
            (apps, outcome), _ = run_fleet(everyone, work)
        finally:
            doomed.stop()
        [failure] = outcome.failures
        assert failure.server == doomed.name
        assert "connection" in failure.error
        doomed_apps = [a for a in apps if a.server == doomed.name]
        diagnosed = [d for d in outcome.diagnoses if d.app.server == doomed.name]
        assert 1 <= len(diagnosed) < len(doomed_apps)
        assert len(diagnosed) + len(failure.apps) == len(doomed_apps)
        others = [d for d in outcome.diagnoses if d.app.server != doomed.name]
        assert len(others) == len(HOSTS) * len(SAMPLE_STACKS)
        assert all(d.health_status is not HealthStatus.UNKNOWN for d in others)

    def test_a_hostile_remote_path_reaches_the_remote_side_as_data(
        self, fleet, servers, manager, tmp_path
    ):
        # No "/" in a name: a command substitution that ran would touch the canary in the
        # remote command's working directory (the login's home) or in ours.
        canary = f"pwned-{uuid.uuid4().hex[:8]}"
        hostile = tmp_path / f'it\'s a "site"; $(touch {canary}); `touch {canary}` $HOME'
        shutil.copytree(EXAMPLES / "php-site", hostile)
        spec = spec_for(fleet, servers["web3"], tmp_path)

        async def work(fleet_):
            reports = await discover_fleet(fleet_, manager, [spec])
            apps = apps_of(reports)
            return reports, await diagnose_fleet(fleet_, manager, apps)

        (reports, outcome), _ = run_fleet([spec], work)
        assert [a.root for a in reports[spec.name].apps] == [str(hostile)]
        [diagnosis] = outcome.diagnoses
        assert diagnosis.app.path == str(hostile)
        permissions = next(r for r in diagnosis.results if r.check == "file_permissions")
        assert permissions.status.value in ("PASS", "FAIL"), permissions.message
        for where in (Path.home(), Path.cwd(), tmp_path):
            assert not (where / canary).exists()

    def test_a_host_that_is_too_slow_fails_alone(self, specs, manager):
        with silent_listener() as sock:
            bad = ServerSpec(name="slow", address="127.0.0.1", port=sock.getsockname()[1])
            everyone = [*specs, bad]
            reports, _ = run_fleet(
                everyone,
                lambda fleet: discover_fleet(fleet, manager, everyone, host_timeout=1.0),
                connect_timeout=30.0,
            )
        assert "did not finish within 1 s" in reports["slow"].error
        assert all(isinstance(reports[s.name], DiscoveryReport) for s in specs)


class TestTrust:
    def test_trust_on_first_use_records_the_key_in_the_registry(
        self, fleet, servers, manager, tmp_path
    ):
        server = servers["web1"]
        known_hosts = tmp_path / "known_hosts"
        spec = attrs.evolve(
            spec_for(fleet, server, tmp_path),
            known_hosts=str(known_hosts),
            trust_on_first_use=True,
        )
        with open_registry(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
            registry.add_server(spec)

            async def main():
                async with Fleet.of([spec], registry=registry) as fleet_:
                    return await discover_fleet(fleet_, manager, [spec])

            reports = asyncio.run(main())
            assert isinstance(reports[spec.name], DiscoveryReport)
            trusted = registry.trusted_key(spec.name)
        assert trusted is not None
        assert trusted.fingerprint.startswith("SHA256:")
        assert server.known_hosts_line.split()[-1] in known_hosts.read_text()

    def test_a_server_is_reached_through_its_jump_host(self, fleet, servers, manager, trees):
        bastion = spec_for(fleet, servers["web1"], "/srv")
        behind = attrs.evolve(spec_for(fleet, servers["web2"], trees["web2"]), jump=bastion.name)
        resolve = {bastion.name: bastion}.__getitem__

        async def main():
            async with Fleet.of([behind], resolve=resolve) as fleet_:
                return await discover_fleet(fleet_, manager, [behind])

        report = asyncio.run(main())[behind.name]
        assert isinstance(report, DiscoveryReport), report
        assert len(report.apps) == len(SAMPLE_STACKS)


# Names a remote command must take as data: quotes, a command separator, substitutions, a
# newline, bytes that are not UTF-8.
HOSTILE = 'it\'s "odd"; $(touch pwned) `touch pwned` &'
NEWLINE = "new\nline"
NOT_UTF8 = os.fsdecode(b"caf\xe9 \xff")
LONG = "n" * 300  # longer than a name may be: lstat says "File name too long"


def odd_tree(base: Path) -> dict[str, str]:
    """Files, directories and links with awkward names under ``base``; paths by label, as
    strings (a Path would drop a trailing slash)."""
    (base / "file").write_text("x")
    (base / "dir").mkdir()
    for name in ("a b", HOSTILE, NEWLINE, NOT_UTF8):
        (base / "dir" / name).write_text("x")
    (base / "dir" / "sub").mkdir()
    (base / "dir" / "link").symlink_to("a b")
    (base / "dir" / "dangling").symlink_to("nowhere")
    (base / "empty").mkdir()
    (base / "link").symlink_to("file")
    (base / "dirlink").symlink_to("dir")
    (base / "dangling").symlink_to("nowhere")
    (base / "loop").symlink_to("loop")
    for name in (HOSTILE, NEWLINE, NOT_UTF8):
        (base / name).mkdir()
        (base / name / name).write_text("y")
    root = str(base)
    return {
        "root": root,
        "file": f"{root}/file",
        "dir": f"{root}/dir",
        "dir/": f"{root}/dir/",
        "dir/.": f"{root}/dir/.",
        "dir/..": f"{root}/dir/..",
        "empty": f"{root}/empty",
        "link": f"{root}/link",
        "dirlink": f"{root}/dirlink",
        "dirlink/": f"{root}/dirlink/",
        "dangling": f"{root}/dangling",
        "loop": f"{root}/loop",
        "hostile": f"{root}/{HOSTILE}",
        "hostile/hostile": f"{root}/{HOSTILE}/{HOSTILE}",
        "newline": f"{root}/{NEWLINE}",
        "not utf-8": f"{root}/{NOT_UTF8}",
        "missing": f"{root}/missing",
        "hostile missing": f"{root}/{HOSTILE}-missing",
        "newline missing": f"{root}/{NEWLINE}-missing",
        "not utf-8 missing": f"{root}/{NOT_UTF8}-missing",
        "missing below /": f"/no-such-{uuid.uuid4().hex}",
        # Neither there nor clearly missing: the batch leaves these to the host's own stat.
        "below missing": f"{root}/missing/below",
        "below file": f"{root}/file/below",
        "file/": f"{root}/file/",
        "missing/": f"{root}/missing/",
        "missing/..": f"{root}/missing/..",
        "dangling/": f"{root}/dangling/",
        "loop/": f"{root}/loop/",  # a link loop: an error, not None
        "long": f"{root}/{LONG}",  # an error, not None
        "long below /": f"/{LONG}",
    }


UNSURE = ("below missing", "below file", "file/", "missing/", "missing/..", "dangling/")
UNSURE += ("loop/", "long", "long below /")


def outcome(answer):
    """An answer, or the error raised instead, in a form that compares."""
    return (type(answer).__name__, str(answer)) if isinstance(answer, BaseException) else answer


async def gather_outcomes(stat, paths):
    """``stat`` of every path at once (one batch, for a BatchingHost), as outcomes."""
    answers = await asyncio.gather(*map(stat, paths), return_exceptions=True)
    return [outcome(answer) for answer in answers]


async def listings(host, paths) -> dict[str, frozenset[str]]:
    """What ``host.list_dir`` lists, as BatchingHost.list_dirs says it; unlistable left out."""
    found = {}
    for path in paths:
        try:
            entries = await host.list_dir(path)
        except OSError:
            continue
        found[path] = frozenset(e.name + "/" if e.is_dir else e.name for e in entries)
    return found


class DamagingHost(LocalHost):
    """This machine, except that the answer to the first command arrives damaged (and not
    marked truncated)."""

    def __init__(self, damage):
        super().__init__()
        self.damage = damage
        self.damaged = False

    async def run(self, argv, **options):
        result = await super().run(argv, **options)
        if self.damaged:
            return result
        self.damaged = True
        return attrs.evolve(result, stdout=self.damage(result.stdout))


class TestBatchingHost:
    """The batched views answer exactly what SSHHost answers, in fewer round trips."""

    def both(self, fleet, server, work, batched_work=None):
        """``work(host)`` on a plain SSHHost, and ``batched_work`` (or ``work``) on a
        BatchingHost over another one, with the round trips the latter cost."""

        async def main():
            plain = SSHHost(fleet.config_for(server))
            wrapped = SSHHost(fleet.config_for(server))
            try:
                direct = await work(plain)
                await wrapped.facts()
                before = wrapped.round_trips
                batched = await (batched_work or work)(BatchingHost(wrapped, batch=True))
                return direct, batched, wrapped.round_trips - before
            finally:
                await plain.close()
                await wrapped.close()

        return asyncio.run(main())

    def test_concurrent_commands_share_a_round_trip_and_keep_their_own_results(
        self, fleet, servers
    ):
        hostile = 'it\'s "a"; $(touch x) `id` \\ \n\t*'
        commands = [
            ("printf", "%s", hostile),
            ("sh", "-c", "echo out; echo err >&2; exit 3"),
            ("printf", "\\377\\376 not utf-8"),
            ("head", "-c", "5000", "/dev/zero"),
            ("no-such-program-here",),
            ("sh", "-c", "kill -TERM $$"),
            ("true",),
        ]

        async def work(host):
            results = await asyncio.gather(*(host.run(c, max_output=4096) for c in commands))
            return [(r.exit_status, r.stdout, r.stderr, r.truncated) for r in results]

        direct, batched, trips = self.both(fleet, servers["web1"], work)
        # A missing program is 127 either way; only who says "not found" differs.
        assert batched[4][0] == direct[4][0] == 127
        assert batched[:4] + batched[5:] == direct[:4] + direct[5:]
        assert direct[0][1] == hostile.encode()
        assert direct[3][3] is True
        assert direct[5][0] == -15
        assert trips == 1

    def test_a_command_that_hangs_past_its_timeout_is_killed_and_fails_alone(self, fleet, servers):
        marker = f"hang-{uuid.uuid4().hex[:8]}"

        async def work(host):
            return await asyncio.gather(
                host.run(("sh", "-c", f"sleep 60; : {marker}"), timeout=1.0),
                host.run(("echo", "fine"), timeout=30.0),
                return_exceptions=True,
            )

        async def main():
            host = SSHHost(fleet.config_for(servers["web2"]))
            try:
                return await work(BatchingHost(host, batch=True))
            finally:
                await host.close()

        hung, fine = asyncio.run(main())
        assert isinstance(hung, CommandTimeoutError)
        assert "timed out after 1 s" in str(hung)
        assert fine.stdout == b"fine\n"
        assert processes_with(marker.encode(), where="cmdline") == []

    def test_concurrent_stats_share_a_round_trip_and_answer_as_ssh_host_does(
        self, fleet, servers, tmp_path
    ):
        (tmp_path / "file").write_text("x")
        (tmp_path / "dir").mkdir()
        (tmp_path / "link").symlink_to("file")
        (tmp_path / 'it\'s "odd"; $(x)').write_text("y")
        paths = [
            str(tmp_path / name)
            for name in ("file", "dir", "link", "missing", "missing/below", "file/below")
        ] + [str(tmp_path / 'it\'s "odd"; $(x)'), str(tmp_path)]

        async def work(host):
            return await asyncio.gather(*(host.stat(path) for path in paths))

        direct, batched, trips = self.both(fleet, servers["web1"], work)
        assert batched == direct
        assert direct[3] is None
        assert direct[0] is not None
        assert trips <= 3  # one batch; a path it cannot settle is asked on its own

    def test_concurrent_reads_share_a_round_trip_per_cap_and_answer_as_ssh_host_does(
        self, fleet, servers, tmp_path
    ):
        (tmp_path / "small").write_text("small")
        (tmp_path / "big").write_bytes(b"b" * 5000)
        (tmp_path / 'it\'s "odd"; $(x)').write_text("odd")
        (tmp_path / "dir").mkdir()
        names = ["small", "big", 'it\'s "odd"; $(x)', "dir", "missing"]
        asks = [
            ([str(tmp_path / n) for n in names[:3]], 100),
            ([str(tmp_path / n) for n in names[1:]], 100),
            ([str(tmp_path / "small")], 100),
            ([str(tmp_path / n) for n in names], 10_000),
            ([str(tmp_path / "big"), str(tmp_path / "big")], 10_000),
        ]

        async def work(host):
            return await asyncio.gather(
                *(host.read_files(paths, max_bytes=cap) for paths, cap in asks)
            )

        direct, batched, trips = self.both(fleet, servers["web1"], work)
        assert batched == direct
        assert [sorted(answer) for answer in batched] == [
            sorted(dict.fromkeys(paths)) for paths, _ in asks
        ]
        assert batched[1][str(tmp_path / "big")].truncated
        assert not batched[3][str(tmp_path / "big")].truncated
        assert batched[1][str(tmp_path / "missing")].error == "missing"
        assert trips == 2  # one per cap

    def test_a_batch_of_odd_paths_answers_as_ssh_host_does_in_one_round_trip(
        self, fleet, servers, tmp_path
    ):
        tree = odd_tree(tmp_path)
        settled = [path for label, path in tree.items() if label not in UNSURE]

        direct, batched, trips = self.both(
            fleet, servers["web1"], lambda host: gather_outcomes(host.stat, settled)
        )
        assert batched == direct
        assert direct[settled.index(tree["missing"])] is None
        assert direct[settled.index(tree["dangling"])].is_link
        assert direct[settled.index(tree["dirlink/"])].is_dir
        assert trips == 1
        assert not (tmp_path / "pwned").exists()
        assert not (Path.home() / "pwned").exists()

    def test_paths_neither_there_nor_clearly_missing_are_asked_of_ssh_host_itself(
        self, fleet, servers, tmp_path
    ):
        """Below a file or a missing directory, a trailing slash, a name too long: each gets
        the host's own answer (None, or its error), one round trip apiece after the batch."""
        tree = odd_tree(tmp_path)
        paths = list(tree.values())

        direct, batched, trips = self.both(
            fleet, servers["web1"], lambda host: gather_outcomes(host.stat, paths)
        )
        assert batched == direct
        assert direct[paths.index(tree["below file"])] is None
        assert "too many levels" in direct[paths.index(tree["loop/"])][1]
        assert "too long" in direct[paths.index(tree["long"])][1]
        assert trips == 1 + len(UNSURE)

    def test_prefetched_stats_answer_as_ssh_host_does_from_one_round_trip(
        self, fleet, servers, tmp_path
    ):
        tree = odd_tree(tmp_path)
        settled = [path for label, path in tree.items() if label not in UNSURE]
        many = settled + [f"{tmp_path}/missing-{i}" for i in range(300)]

        async def direct_work(host):
            return [await host.stat(path) for path in many]

        async def batched_work(host):
            await host.prefetch_stats(many)
            return [await host.stat(path) for path in many]

        direct, batched, trips = self.both(fleet, servers["web2"], direct_work, batched_work)
        assert batched == direct
        assert trips == 1

    def test_list_dirs_lists_what_ssh_host_lists_in_one_round_trip(self, fleet, servers, tmp_path):
        """A link to a directory lists its target; what is not a directory is left out."""
        tree = odd_tree(tmp_path)
        paths = list(tree.values())

        async def batched_work(host):
            return await host.list_dirs(paths)

        direct, batched, trips = self.both(
            fleet, servers["web3"], lambda host: listings(host, paths), batched_work
        )
        assert batched == direct
        assert batched[tree["empty"]] == frozenset()
        assert batched[tree["dirlink"]] == batched[tree["dir"]]
        assert {"sub/", "link", "dangling", HOSTILE, NEWLINE, NOT_UTF8} < batched[tree["dir"]]
        assert batched[tree["hostile"]] == {HOSTILE}
        assert batched[tree["not utf-8"]] == {NOT_UTF8}
        for left_out in ("file", "link", "dangling", "missing", "below file", "loop"):
            assert tree[left_out] not in batched
        assert trips == 1

    def test_a_directory_that_cannot_be_listed_is_left_out_and_the_others_are_listed(
        self, fleet, servers, tmp_path
    ):
        """A zombie's /proc/PID/net is a directory that even root cannot list (EINVAL)."""
        tree = odd_tree(tmp_path)
        zombie = subprocess.Popen(["true"])
        try:
            net = f"/proc/{zombie.pid}/net"
            deadline = time.monotonic() + 10
            while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                assert time.monotonic() < deadline, "`true` did not exit within 10 s"
                time.sleep(0.01)  # polling the kernel's view of a process, bounded above
            # The test stands on this; a kernel that lists it needs another unlistable directory.
            with pytest.raises(OSError, match="Invalid argument"):
                os.listdir(net)
            paths = [tree["dir"], net, tree["empty"], tree["hostile"]]

            async def batched_work(host):
                return await host.list_dirs(paths)

            direct, batched, trips = self.both(
                fleet, servers["web3"], lambda host: listings(host, paths), batched_work
            )
        finally:
            zombie.wait()
        assert batched == direct
        assert set(batched) == {tree["dir"], tree["empty"], tree["hostile"]}
        assert trips == 1  # the same command lists them again one by one

    def test_batches_on_this_machine_answer_as_local_host_does(self, tmp_path):
        tree = odd_tree(tmp_path)
        paths = list(tree.values())

        async def main():
            local, batching = LocalHost(), BatchingHost(LocalHost(), batch=True)
            stats = [await gather_outcomes(h.stat, paths) for h in (local, batching)]
            nothing = await batching.list_dirs([tree["file"], tree["missing"]])
            return stats, await listings(local, paths), await batching.list_dirs(paths), nothing

        (direct, batched), listed, batch_listed, nothing = asyncio.run(main())
        assert batched == direct
        assert batch_listed == listed
        assert nothing == {}

    @pytest.mark.parametrize(
        "damage",
        [
            pytest.param(lambda data: data[: len(data) // 2], id="cut-in-half"),
            pytest.param(lambda data: data[: data.rindex(b"\0", 0, -1) + 1], id="last-record-lost"),
            pytest.param(lambda data: data.replace(b"\0", b"\0\0", 1), id="record-added"),
        ],
    )
    def test_an_answer_that_does_not_add_up_is_asked_again_and_never_trusted(
        self, tmp_path, damage
    ):
        tree = odd_tree(tmp_path)
        paths = list(tree.values())

        async def main():
            local = LocalHost()
            stats = await gather_outcomes(local.stat, paths)
            batched = await gather_outcomes(
                BatchingHost(DamagingHost(damage), batch=True).stat, paths
            )
            listed = await BatchingHost(DamagingHost(damage), batch=True).list_dirs(paths)
            return stats, batched, await listings(local, paths), listed

        stats, batched, listed, batch_listed = asyncio.run(main())
        assert batched == stats
        assert batch_listed == listed


class TestHostWideQueries:
    def test_apps_that_lose_their_host_in_a_host_wide_query_are_not_reported_as_diagnosed(
        self, fleet, tmp_path
    ):
        """A check whose only contact with the host is a host-wide query still tells the fleet
        that its application lost the host: UNKNOWN with the reason, not a list of ERRORs."""
        doomed = fleet.start(f"query-{uuid.uuid4().hex[:6]}", address="127.0.0.10")
        root = tmp_path / "apps"
        for name in ("php-site", "express-api", "node-worker"):
            shutil.copytree(EXAMPLES / name, root / name)

        @attrs.frozen
        class KillsTheHost(HostQuery[str, int]):
            async def answer(self, host, keys):
                doomed.kill()
                await host.run(("true",), timeout=5)
                return dict.fromkeys(keys, 0)

        class AsksOnly(DiagnosticCheck):
            name = "asks_only"
            category = CheckCategory.SYSTEM
            severity = RiskLevel.LOW

            async def run(self, ctx):
                await ctx.ask(KillsTheHost(), ctx.app.path)
                return ctx.passed("the host answered")

        class Plugin:
            @hookimpl
            def healer_get_checks(self, stack):
                return [AsksOnly()]

        manager = build_plugin_manager(load_entry_points=False, extra=[("asker", Plugin())])
        spec = spec_for(fleet, doomed, root)

        async def work(fleet_):
            apps = apps_of(await discover_fleet(fleet_, manager, [spec]))
            return apps, await diagnose_fleet(fleet_, manager, apps)

        try:
            (apps, outcome), _ = run_fleet([spec], work)
        finally:
            doomed.stop()
        assert len(apps) == 3
        assert outcome.diagnoses == ()
        [failure] = outcome.failures
        assert sorted(app.path for app in failure.apps) == sorted(app.path for app in apps)
        assert "connection" in failure.error
