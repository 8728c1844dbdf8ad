"""Inventory files: TOML [[servers]] tables into ServerSpecs, with errors that name the file, the
entry and the field; and the jump hosts they name."""

from __future__ import annotations

import pytest

from universal_healer.exceptions import ConfigurationError
from universal_healer.inventory import (
    ServerKind,
    ServerSpec,
    check_jumps,
    load_inventory,
    parse_inventory,
)

FULL = """
[[servers]]
name = "bastion"
address = "192.0.2.1"
user = "hop"

[[servers]]
name = "web-1"
address = "192.0.2.10"
port = 2222
user = "deploy"
keys = ["keys/id_web", "~/.ssh/id_ed25519", "/etc/healer/id"]
known_hosts = "known_hosts"
password = "canary-toml-pw"
jump = "bastion"
search_paths = ["/var/www", "/srv"]
tags = ["production", "eu"]
trust_on_first_use = true
max_channels = 4

[[servers]]
name = "here"
kind = "local"
"""


class TestParsing:
    def test_every_field_reaches_the_spec(self):
        bastion, web, here = parse_inventory(FULL, source="fleet.toml", base="/etc/healer")
        assert bastion == ServerSpec(name="bastion", address="192.0.2.1", username="hop")
        assert web == ServerSpec(
            name="web-1",
            address="192.0.2.10",
            port=2222,
            username="deploy",
            client_keys=("/etc/healer/keys/id_web", "~/.ssh/id_ed25519", "/etc/healer/id"),
            known_hosts="/etc/healer/known_hosts",
            password="canary-toml-pw",  # noqa: S106 - a canary
            jump="bastion",
            search_paths=("/var/www", "/srv"),
            tags=("production", "eu"),
            trust_on_first_use=True,
            max_channels=4,
        )
        assert here == ServerSpec(name="here", kind=ServerKind.LOCAL)

    def test_relative_key_paths_are_taken_from_the_files_folder(self, tmp_path):
        (tmp_path / "inventory.toml").write_text(
            '[[servers]]\nname = "a"\naddress = "192.0.2.5"\nkeys = ["id_a"]\n'
        )
        [spec] = load_inventory(str(tmp_path / "inventory.toml"))
        assert spec.client_keys == (str(tmp_path / "id_a"),)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            pytest.param("servers = [", "inventory.toml: not valid TOML", id="not-toml"),
            pytest.param("", "no [[servers]] tables", id="empty"),
            pytest.param(
                '[server]\nname = "a"', "unexpected top-level key 'server'", id="typo-in-table"
            ),
            pytest.param(
                '[[servers]]\naddress = "192.0.2.5"',
                "server #1: field 'name' is missing",
                id="no-name",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\naddress = "192.0.2.5"\nport = "22"',
                "server #1 ('a'): field 'port' must be an integer from 1 to 65535, got '22'",
                id="port-as-text",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\naddress = "192.0.2.5"\nport = 70000',
                "field 'port' must be an integer from 1 to 65535, got 70000",
                id="port-out-of-range",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\naddress = "192.0.2.5"\nport = true',
                "field 'port' must be an integer",
                id="port-as-bool",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\naddress = "192.0.2.5"\nkeys = "id"',
                "field 'keys' must be a list of non-empty strings, got 'id'",
                id="keys-not-a-list",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\naddress = "192.0.2.5"\nhostname = "x"',
                "field 'hostname' is not a server field",
                id="unknown-field",
            ),
            pytest.param(
                '[[servers]]\nname = "a"', "field 'address' is missing", id="ssh-without-address"
            ),
            pytest.param(
                '[[servers]]\nname = "a b"\naddress = "192.0.2.5"',
                "server #1 ('a b'): field 'name'",
                id="name-with-space",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\nkind = "telnet"',
                "field 'kind' must be one of 'local', 'ssh', got 'telnet'",
                id="unknown-kind",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\naddress = "192.0.2.5"\ntrust_on_first_use = "yes"',
                "field 'trust_on_first_use' must be true or false",
                id="tofu-as-text",
            ),
            pytest.param(
                '[[servers]]\nname = "a"\naddress = "192.0.2.5"\n'
                '[[servers]]\nname = "a"\naddress = "192.0.2.6"',
                "server #2 ('a'): field 'name' repeats the name of server #1",
                id="duplicate-name",
            ),
        ],
    )
    def test_a_mistake_names_the_file_the_entry_and_the_field(self, text, message):
        with pytest.raises(ConfigurationError) as caught:
            parse_inventory(text, source="inventory.toml", base="/")
        assert message in str(caught.value)
        assert str(caught.value).startswith("inventory.toml: ")

    def test_a_bad_password_value_is_refused_without_echoing_it(self):
        text = '[[servers]]\nname = "a"\naddress = "192.0.2.5"\npassword = ""'
        with pytest.raises(ConfigurationError, match="field 'password' must be a non-empty"):
            parse_inventory(text, source="inventory.toml")

    def test_a_file_that_cannot_be_read_is_named(self, tmp_path):
        missing = tmp_path / "nope.toml"
        with pytest.raises(ConfigurationError, match=f"{missing}: cannot read the inventory"):
            load_inventory(str(missing))


KNOWN = {
    "bastion": ServerSpec(name="bastion", address="192.0.2.1"),
    "here": ServerSpec(name="here", kind=ServerKind.LOCAL),
    "inner": ServerSpec(name="inner", address="192.0.2.2", jump="bastion"),
}


class TestJumps:
    def test_a_jump_host_in_the_registry_or_the_same_file_is_fine(self):
        new_bastion = ServerSpec(name="hop", address="192.0.2.3")
        check_jumps(
            [
                ServerSpec(name="a", address="192.0.2.4", jump="bastion"),
                ServerSpec(name="b", address="192.0.2.5", jump="hop"),
                new_bastion,
            ],
            KNOWN,
        )

    @pytest.mark.parametrize(
        ("jump", "message"),
        [
            pytest.param("nowhere", "is not in the inventory", id="unknown"),
            pytest.param("a", "is the server itself", id="itself"),
            pytest.param("here", "is not an SSH server", id="local"),
            pytest.param("inner", "one jump host is supported", id="nested"),
        ],
    )
    def test_a_jump_host_that_cannot_be_used_is_refused(self, jump, message):
        with pytest.raises(ConfigurationError, match=message):
            check_jumps([ServerSpec(name="a", address="192.0.2.4", jump=jump)], KNOWN)
