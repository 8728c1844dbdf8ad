"""SecretBox and redact: encryption at rest, the key file, and secrets kept out of text."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.fernet import Fernet

from universal_healer.exceptions import ConfigurationError
from universal_healer.secrets import SecretBox, default_key_file, redact

CANARY = "canary-pw-Zx81!"


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """No key in the environment; XDG_CONFIG_HOME under tmp_path."""
    monkeypatch.delenv("HEALER_SECRET_KEY", raising=False)
    monkeypatch.delenv("HEALER_SECRET_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class TestEncryption:
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param(CANARY, id="ascii"),
            pytest.param("", id="empty"),
            pytest.param("mot de passe — ✓ 密码", id="unicode"),
            pytest.param("bytes " + os.fsdecode(b"\xff\xfe"), id="surrogate-escapes"),
        ],
    )
    def test_text_round_trips(self, text):
        box = SecretBox.generate()
        token = box.encrypt(text)
        assert text not in token or not text
        assert token.isascii()
        assert box.decrypt(token) == text

    def test_mappings_round_trip(self):
        box = SecretBox.generate()
        secrets = {"DB_PASSWORD": CANARY, "API_TOKEN": "tøken", "empty": ""}
        token = box.encrypt_mapping(secrets)
        assert CANARY not in token
        assert box.decrypt_mapping(token) == secrets

    def test_a_value_json_cannot_hold_is_refused_without_showing_it(self):
        with pytest.raises(TypeError, match="JSON") as caught:
            SecretBox.generate().encrypt_mapping({"password": {CANARY}})
        assert CANARY not in str(caught.value)

    def test_a_token_made_with_another_key_is_refused_clearly(self):
        token = SecretBox.generate().encrypt(CANARY)
        with pytest.raises(ConfigurationError, match="encrypted with another key") as caught:
            SecretBox.generate().decrypt(token)
        message = str(caught.value)
        assert CANARY not in message
        assert token not in message
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__

    @pytest.mark.parametrize(
        "damage",
        [
            pytest.param(lambda token: token[:-4], id="truncated"),
            pytest.param(
                # A character that differs from the one it replaces (an "A" for an "A" would
                # alter nothing: one token in 64 has one there).
                lambda token: token[:20] + ("B" if token[20] == "A" else "A") + token[21:],
                id="altered",
            ),
            pytest.param(lambda token: "not a token at all ✗", id="garbage"),
        ],
    )
    def test_a_damaged_token_is_refused(self, damage):
        box = SecretBox.generate()
        with pytest.raises(ConfigurationError, match="another key"):
            box.decrypt(damage(box.encrypt(CANARY)))

    def test_repr_shows_neither_key_nor_plaintext(self):
        key = Fernet.generate_key()
        box = SecretBox(key, source="$HEALER_SECRET_KEY")
        box.encrypt(CANARY)
        assert repr(box) == "SecretBox(source='$HEALER_SECRET_KEY')"
        assert key.decode() not in repr(box)
        assert CANARY not in repr(box)

    def test_a_malformed_key_is_refused_without_echoing_it(self):
        with pytest.raises(ConfigurationError, match="not a Fernet key") as caught:
            SecretBox("almost-a-key-but-not-quite", source="$HEALER_SECRET_KEY")
        assert "almost-a-key" not in str(caught.value)


class TestKeyFromEnvironment:
    def test_the_environment_variable_wins(self, environment, monkeypatch):
        key = Fernet.generate_key()
        monkeypatch.setenv("HEALER_SECRET_KEY", key.decode())
        box = SecretBox.from_environment()
        assert box.source == "$HEALER_SECRET_KEY"
        assert SecretBox(key).decrypt(box.encrypt(CANARY)) == CANARY
        assert not os.path.exists(default_key_file())  # no file made when not needed

    def test_a_key_file_is_created_private_on_first_use_and_reused(self, environment):
        path = environment / "config" / "universal-healer" / "secret.key"
        token = SecretBox.from_environment().encrypt(CANARY)
        assert default_key_file() == str(path)
        assert mode(path) == 0o600
        assert mode(path.parent) == 0o700
        again = SecretBox.from_environment()
        assert again.source == str(path)
        assert again.decrypt(token) == CANARY
        assert sorted(os.listdir(path.parent)) == ["secret.key"]  # no temporary left behind

    def test_the_key_file_can_be_chosen(self, environment, monkeypatch):
        chosen = environment / "elsewhere" / "healer.key"
        monkeypatch.setenv("HEALER_SECRET_KEY_FILE", str(chosen))
        SecretBox.from_environment()
        assert mode(chosen) == 0o600
        assert not os.path.exists(environment / "config")

    @pytest.mark.parametrize(
        "xdg", [pytest.param(None, id="unset"), pytest.param("relative/dir", id="relative")]
    )
    def test_the_key_file_falls_back_to_dot_config_in_home(self, environment, monkeypatch, xdg):
        monkeypatch.setenv("HOME", str(environment))
        if xdg is None:
            monkeypatch.delenv("XDG_CONFIG_HOME")
        else:
            monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
        assert default_key_file() == str(environment / ".config/universal-healer/secret.key")

    @pytest.mark.parametrize(
        "loose", [pytest.param(0o640, id="group"), pytest.param(0o604, id="others")]
    )
    def test_a_key_file_others_can_read_is_refused_with_the_fix(self, environment, loose):
        SecretBox.from_environment()
        path = default_key_file()
        os.chmod(path, loose)
        with pytest.raises(ConfigurationError, match=f"chmod 600 {path}") as caught:
            SecretBox.from_environment()
        assert f"{loose:04o}" in str(caught.value)
        with open(path) as handle:
            assert handle.read().strip() not in str(caught.value)

    def test_a_key_file_that_cannot_be_created_says_what_to_do(self, environment, monkeypatch):
        blocked = environment / "a-file"  # not a directory: nothing can be made under it
        blocked.write_text("")
        monkeypatch.setenv("HEALER_SECRET_KEY_FILE", str(blocked / "sub" / "secret.key"))
        with pytest.raises(ConfigurationError, match="HEALER_SECRET_KEY"):
            SecretBox.from_environment()

    def test_processes_starting_together_agree_on_one_key(self, environment):
        barrier = threading.Barrier(8)

        def start():
            barrier.wait()
            return SecretBox.from_environment()

        with ThreadPoolExecutor(8) as pool:
            boxes = list(pool.map(lambda _: start(), range(8)))
        token = boxes[0].encrypt(CANARY)
        assert all(box.decrypt(token) == CANARY for box in boxes)


class TestRedact:
    def test_every_occurrence_of_every_secret_is_replaced(self):
        text = f"mysql -p{CANARY} ok\nuser=app token=tok-123456 again {CANARY}"
        assert redact(text, [CANARY, "tok-123456"]) == (
            "mysql -p*** ok\nuser=app token=*** again ***"
        )

    def test_short_and_empty_secrets_are_left_alone(self):
        assert redact("yes it is on", ["", "yes", "on"]) == "yes it is on"

    def test_a_secret_containing_another_is_hidden_whole(self):
        assert redact("pw=secretsecret2", ["secret", "secretsecret2"]) == "pw=***"

    def test_secrets_with_regex_characters_are_taken_literally(self):
        assert redact("a.*b and a+b(c)", ["a.*b", "a+b(c)"]) == "*** and ***"
        assert redact("aXXb", ["a.*b"]) == "aXXb"

    def test_text_without_secrets_is_unchanged(self):
        assert redact("nothing here", []) == "nothing here"
        assert redact("", [CANARY]) == ""
