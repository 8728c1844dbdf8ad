"""The /proc parsers behind host service detection: real-format fixtures, generated sockets, and
this machine's MariaDB as LocalHost sees it."""

from __future__ import annotations

import asyncio
import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from universal_healer.hosts import Listener, LocalHost
from universal_healer.hosts._procnet import (
    decode_address,
    parse_comms,
    parse_tcp,
    parse_unix,
    sorted_listeners,
)

# Copied from a Debian host: MariaDB on 127.0.0.1:3306, sshd on every address, one connection.
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 8856 1 0000000073109c2b 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4853 1 000000003d9b348d 100 0 0 10 0
   2: 0100007F:0CEA 0100007F:D4C2 01 00000000:00000000 00:00000000 00000000   107        0 9912 1 00000000a1b2c3d4 20 4 30 10 -1
"""  # noqa: E501

TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2941 1 00000000749e93c8 100 0 0 10 0
   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4855 1 00000000956e5764 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0CEA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 5657 1 00000000956e5764 100 0 0 10 0
"""  # noqa: E501

UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
0000000076e3500d: 00000002 00000000 00010000 0001 01  4142 /var/run/postgresql/.s.PGSQL.5432
00000000aa98cedd: 00000003 00000000 00000000 0001 03  1617
000000009296c40b: 00000002 00000000 00010000 0001 01  8857 /run/mysqld/mysqld.sock
00000000ac58726c: 00000003 00000000 00000000 0001 03  1616 /run/systemd/journal/stdout
00000000deadbeef: 00000002 00000000 00010000 0005 01  9001 @/tmp/.X11-unix/X0
00000000feedf00d: 00000002 00000000 00010000 0001 01  9002 /srv/app/my socket.sock
0000000012345678: 00000002 00000000 00010000 0001 01  9003
"""


class TestTcp:
    def test_real_format_lists_only_listening_sockets(self):
        assert parse_tcp(TCP) == (
            Listener(kind="tcp", address="0.0.0.0", port=22),  # noqa: S104 - parsed, not bound
            Listener(kind="tcp", address="127.0.0.1", port=3306),
        )

    def test_real_format_ipv6(self):
        assert parse_tcp(TCP6) == (
            Listener(kind="tcp", address="::", port=22),
            Listener(kind="tcp", address="::1", port=6379),
            Listener(kind="tcp", address="::ffff:7f00:1", port=3306),
        )

    def test_garbage_lines_are_skipped(self):
        text = "nonsense\n 0: ZZZZ:0016 0 0A\n 1: 0100007F:XYZ 0 0A\n 2: 01:0016 0 0A\n"
        assert parse_tcp(text) == ()

    @given(
        st.lists(st.tuples(st.ip_addresses(v=4), st.integers(0, 65535), st.booleans()), max_size=20)
    )
    def test_ipv4_round_trip(self, sockets):
        lines = ["  sl  local_address rem_address   st"]
        for i, (address, port, listening) in enumerate(sockets):
            hex_address = address.packed[::-1].hex().upper()
            state = "0A" if listening else "01"
            lines.append(f"{i:4}: {hex_address}:{port:04X} 00000000:0000 {state} 0 0 0 0 0")
        expected = {
            Listener(kind="tcp", address=str(address), port=port)
            for address, port, listening in sockets
            if listening
        }
        assert parse_tcp("\n".join(lines)) == sorted_listeners(expected)

    @given(st.ip_addresses(v=6), st.integers(0, 65535))
    def test_ipv6_round_trip(self, address, port):
        packed = address.packed
        words = b"".join(packed[i : i + 4][::-1] for i in range(0, 16, 4))
        line = f"   0: {words.hex().upper()}:{port:04X} {'0' * 32}:0000 0A 0 0 0 0 0"
        assert parse_tcp(line) == (Listener(kind="tcp", address=str(address), port=port),)

    def test_decode_address(self):
        assert decode_address("0100007F") == "127.0.0.1"
        assert decode_address("00000000000000000000000001000000") == "::1"
        assert ipaddress.ip_address(decode_address("0102A8C0")) == ipaddress.ip_address(
            "192.168.2.1"
        )


class TestUnix:
    def test_real_format_lists_listening_sockets_with_a_path(self):
        assert [listener.path for listener in parse_unix(UNIX)] == [
            "/run/mysqld/mysqld.sock",
            "/srv/app/my socket.sock",
            "/var/run/postgresql/.s.PGSQL.5432",
            "@/tmp/.X11-unix/X0",
        ]
        assert all(
            listener.kind == "unix" and listener.port is None for listener in parse_unix(UNIX)
        )

    @given(
        st.lists(
            st.tuples(
                st.text(
                    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
                    min_size=1,
                    max_size=30,
                ).map(lambda name: "/run/" + name),
                st.integers(0, 0xFFFFFFFF),
            ),
            max_size=20,
        )
    )
    def test_listening_flag_decides(self, sockets):
        lines = ["Num       RefCount Protocol Flags    Type St Inode Path"]
        for i, (path, flags) in enumerate(sockets):
            lines.append(f"{i:016x}: 00000002 00000000 {flags:08x} 0001 01 {i} {path}")
        expected = {Listener(kind="unix", path=p) for p, flags in sockets if flags & 0x10000}
        assert parse_unix("\n".join(lines)) == sorted_listeners(expected)


class TestComms:
    def test_sorted_unique_names(self):
        assert parse_comms("sshd\nmariadbd\nsshd\n\nkworker/0:1-events\n") == (
            "kworker/0:1-events",
            "mariadbd",
            "sshd",
        )

    @given(
        st.lists(
            st.text(
                st.characters(blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                min_size=1,
                max_size=15,
            ).filter(str.strip)
        )
    )
    def test_names_survive(self, names):
        assert parse_comms("\n".join(names)) == tuple(sorted(set(names)))


class TestLocalHost:
    def test_this_machines_mariadb_is_seen(self):
        facts = asyncio.run(LocalHost().facts())
        assert Listener(kind="tcp", address="127.0.0.1", port=3306) in facts.listeners
        assert "mariadbd" in facts.processes
        assert list(facts.processes) == sorted(set(facts.processes))
        assert all(
            (listener.kind == "tcp") == (listener.port is not None) for listener in facts.listeners
        )
