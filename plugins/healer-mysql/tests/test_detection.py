"""Detection: pure on built probes (examples and hypothesis), then real discovery of the
machine's MariaDB from its datadir and its configuration directory."""

from __future__ import annotations

from _mysql_world import DATADIR, manager, run
from hypothesis import given
from hypothesis import strategies as st
from universal_healer.discovery import discover
from universal_healer.hosts import LocalHost
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
        report = run(discover(LocalHost(), manager(), [str(tmp_path)]))
        assert report.apps == ()
        assert [s.reason for s in report.skipped] == ["no plugin recognised it"]
