"""Detection: pure on built probes and host facts (examples and hypothesis), then real discovery
of the machine's MariaDB from its datadir, its configuration directory and its running server."""

from __future__ import annotations

from _mysql_world import DATADIR, manager, run
from hypothesis import given
from hypothesis import strategies as st
from universal_healer.discovery import discover
from universal_healer.hosts import HostFacts, Listener, LocalHost
from universal_healer.model import ProbedFile
from universal_healer.testing import make_probe

from healer_mysql import detection, plugin

DEBIAN_MY_CNF = "[client-server]\nsocket = /run/mysqld/mysqld.sock\n[mysqld]\ndatadir = /data\n"


class TestDatadir:
    def test_a_mariadb_datadir_with_its_version(self):
        probe = make_probe(
            {"mysql_upgrade_info": "10.11.19-MariaDB", "aria_log_control": b"\xfe\xfe",
             "ibdata1": b"\0" * 16},
            root="/var/lib/mysql", dirs=["mysql", "performance_schema"],
        )  # fmt: skip
        found = plugin.healer_detect(probe)
        assert (found.stack, found.version, found.confidence) == ("mysql", "10.11.19-MariaDB", 0.9)
        assert any("from mysql_upgrade_info" in line for line in found.evidence)

    def test_a_mysql8_datadir_says_the_version_is_unknown_here(self):
        probe = make_probe({"ibdata1": b"\0", "mysql.ibd": b"\0"}, dirs=["mysql"])
        found = plugin.healer_detect(probe)
        assert (found.version, found.confidence) == (None, 0.9)
        assert "mysql.ibd: a MySQL 8 server" in found.evidence

    def test_a_lone_ibdata1_is_only_perhaps_a_datadir(self):
        found = plugin.healer_detect(make_probe({"ibdata1": b"\0"}))
        assert found.confidence == 0.5
        assert any("perhaps a copy" in line for line in found.evidence)

    def test_an_unreadable_version_file_is_evidence_not_an_error(self):
        probe = make_probe(
            {"mysql_upgrade_info": ProbedFile(path="x", error="permission denied")},
            dirs=["mysql"],
        )
        found = plugin.healer_detect(probe)
        assert found.version is None
        assert "mysql_upgrade_info unreadable: permission denied" in found.evidence


class TestConfigDir:
    def test_a_debian_config_dir(self):
        probe = make_probe(
            {"my.cnf": DEBIAN_MY_CNF, "debian.cnf": "[client]\n"}, root="/etc/mysql",
            dirs=["conf.d", "mariadb.conf.d"],
        )  # fmt: skip
        found = plugin.healer_detect(probe)
        assert (found.stack, found.version, found.confidence) == ("mysql", None, 0.8)
        assert "my.cnf sets datadir = /data" in found.evidence
        assert "mariadb.cnf/mariadb.conf.d: a MariaDB server" in found.evidence

    def test_a_lone_my_cnf_with_server_options(self):
        found = plugin.healer_detect(make_probe({"my.cnf": DEBIAN_MY_CNF}, root="/etc"))
        assert found.confidence == 0.7

    def test_a_client_only_option_file_is_no_server(self):
        assert plugin.healer_detect(make_probe({"my.cnf": "[client]\nuser = app\n"})) is None

    def test_nothing_of_mysql_is_nothing(self):
        assert plugin.healer_detect(make_probe({"package.json": "{}"})) is None


@given(
    st.dictionaries(
        st.sampled_from(["my.cnf", "mysql_upgrade_info", "aria_log_control", "ibdata1",
                         "debian.cnf", "mysql.ibd"]),
        st.binary(max_size=300),
    ),
    st.lists(st.sampled_from(["mysql", "conf.d", "mariadb.conf.d", "sys"]), max_size=3),
)  # fmt: skip
def test_detection_never_raises_and_always_explains_itself(files, dirs):
    found = plugin.healer_detect(make_probe(files, dirs=dirs))
    markers = {"my.cnf", "mysql_upgrade_info", "aria_log_control", "ibdata1"}
    if not markers & set(files):
        assert found is None
    if found is not None:
        assert found.stack == "mysql"
        assert found.evidence


def test_every_marker_is_a_plain_file_name_and_asked_for():
    asked = {f.path: f for f in plugin.healer_probe_files()}
    for name in (*detection.DATADIR_MARKERS, detection.CONFIG_MARKER):
        assert asked[name].marker


def facts(listeners=(), processes=()):
    return HostFacts(
        hostname="db1", cpu_count=1, load_average=(0.0, 0.0, 0.0),
        memory_total_bytes=1, memory_available_bytes=1,
        listeners=tuple(listeners), processes=tuple(sorted(processes)),
    )  # fmt: skip


TCP_3306 = Listener(kind="tcp", address="127.0.0.1", port=3306)
SOCKET = Listener(kind="unix", path="/run/mysqld/mysqld.sock")


class TestServices:
    def test_a_process_and_a_listener_is_a_running_server(self):
        [found] = plugin.healer_detect_services(facts([TCP_3306, SOCKET], ["mariadbd", "sshd"]))
        assert (found.stack, found.root, found.version, found.confidence) == (
            "mysql", "/var/lib/mysql", None, 0.9,
        )  # fmt: skip
        assert "a MySQL/MariaDB server process is running: mariadbd" in found.evidence
        assert (
            "listening on TCP 127.0.0.1:3306, unix socket /run/mysqld/mysqld.sock" in found.evidence
        )

    def test_a_process_alone_or_a_listener_alone_is_less_sure(self):
        [by_process] = plugin.healer_detect_services(facts(processes=["mysqld"]))
        [by_port] = plugin.healer_detect_services(facts([TCP_3306]))
        [by_socket] = plugin.healer_detect_services(
            facts([Listener(kind="unix", path="/var/lib/mysql/mysql.sock")])
        )
        assert {by_process.confidence, by_port.confidence, by_socket.confidence} == {0.8}

    def test_other_services_are_not_mysql(self):
        others = facts(
            [Listener(kind="tcp", address="0.0.0.0", port=5432),  # noqa: S104 - not bound
             Listener(kind="unix", path="/run/postgresql/.s.PGSQL.5432"),
             Listener(kind="unix", path="/run/mysqld/mysqld.sock.lock")],
            ["postgres", "mysql", "mysqld_safe"],
        )  # fmt: skip
        assert plugin.healer_detect_services(others) == []


@given(
    st.lists(
        st.one_of(
            st.builds(Listener, kind=st.just("tcp"), address=st.just("127.0.0.1"),
                      port=st.integers(0, 65535)),
            st.builds(Listener, kind=st.just("unix"),
                      path=st.sampled_from(["/run/mysqld/mysqld.sock", "/tmp/mysql.sock",
                                            "/run/x.sock", "@abstract"])),
        ),
        max_size=5,
    ),
    st.lists(st.sampled_from(["mariadbd", "mysqld", "sshd", "postgres", "mysql"]), max_size=4),
)  # fmt: skip
def test_service_detection_is_sure_only_with_both_signs(listeners, processes):
    found = plugin.healer_detect_services(facts(listeners, set(processes)))
    process = bool({"mariadbd", "mysqld"} & set(processes))
    listener = any(
        (x.kind == "tcp" and x.port == 3306)
        or (x.kind == "unix" and x.path in ("/run/mysqld/mysqld.sock", "/tmp/mysql.sock"))
        for x in listeners
    )
    if not (process or listener):
        assert found == []
    else:
        [one] = found
        assert one.root == "/var/lib/mysql"
        assert one.confidence == (0.9 if process and listener else 0.8)
        assert one.evidence


class TestDiscovery:
    def test_healer_discover_finds_the_machines_mariadb_by_its_datadir_and_config(self, mariadb):
        report = run(discover(LocalHost(), manager(), [DATADIR, "/etc/mysql"]))
        found = {app.root: app.outcome.best for app in report.apps}
        datadir = found[DATADIR]
        assert (datadir.stack, datadir.plugin, datadir.confidence) == ("mysql", "mysql", 0.9)
        with open(f"{DATADIR}/mysql_upgrade_info", "rb") as handle:
            assert datadir.version == handle.read().strip(b"\0\n ").decode()
        assert found["/etc/mysql"].stack == "mysql"
        assert not [r for r in report.skipped if r.path in (DATADIR, "/etc/mysql")]

    def test_discovery_does_not_take_a_web_app_for_a_server(self, tmp_path):
        app = tmp_path / "site"
        app.mkdir()
        (app / "my.cnf").write_text("[client]\nuser = site\n")
        report = run(discover(LocalHost(), manager(), [str(tmp_path)], services=False))
        assert report.apps == ()
        assert [s.reason for s in report.skipped] == ["no plugin recognised it"]

    def test_local_host_facts_find_the_running_mariadb(self, mariadb):
        [found] = plugin.healer_detect_services(run(LocalHost().facts()))
        assert (found.stack, found.root, found.confidence) == ("mysql", DATADIR, 0.9)
        assert any("mariadbd" in line for line in found.evidence)
        assert any("127.0.0.1:3306" in line for line in found.evidence)

    def test_discovery_with_services_finds_the_server_with_no_files_scanned(
        self, mariadb, tmp_path
    ):
        empty = tmp_path / "nonexistent-empty-dir"
        report = run(discover(LocalHost(), manager(), [str(empty)], services=True))
        [app] = report.apps
        assert (app.root, app.stack, app.outcome.best.plugin) == (DATADIR, "mysql", "mysql")
        assert app.outcome.best.confidence == 0.9
        assert app.probe.root == DATADIR
        assert app.probe.entries == frozenset()
        assert report.errors == (f"{empty}: missing",)

    def test_a_scanned_datadir_and_the_running_server_are_one_app(self, mariadb):
        report = run(discover(LocalHost(), manager(), [DATADIR], services=True))
        [app] = [a for a in report.apps if a.root == DATADIR]
        assert len(report.apps) == 1
        best = app.outcome.best
        with open(f"{DATADIR}/mysql_upgrade_info", "rb") as handle:
            assert best.version == handle.read().strip(b"\0\n ").decode()
        assert any("data directory" in line for line in best.evidence)
        assert any("server process is running: mariadbd" in line for line in best.evidence)
        assert best.confidence == 0.9

    def test_without_services_only_files_count(self, mariadb, tmp_path):
        report = run(discover(LocalHost(), manager(), [str(tmp_path)], services=False))
        assert report.apps == ()
