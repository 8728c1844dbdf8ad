"""Secrets at rest: encrypting credentials for the registry, and keeping them out of output.

A :class:`SecretBox` encrypts short strings (a server's password) and small mappings (an
application's database credentials) with Fernet, authenticated symmetric encryption from
``cryptography``. Its key comes from ``$HEALER_SECRET_KEY`` or from a private key file created
on first use (:meth:`SecretBox.from_environment`). Whoever holds the registry database without
the key holds only ciphertext.

:func:`redact` removes secret values from text that is about to be stored or shown, such as
the output of a command that printed a configuration file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from universal_healer.exceptions import ConfigurationError

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "SecretBox",
    "default_key_file",
    "redact",
    "redact_tree",
]

ENV_KEY = "HEALER_SECRET_KEY"
ENV_KEY_FILE = "HEALER_SECRET_KEY_FILE"

REDACTED = "***"
_MIN_SECRET_LEN = 4  # shorter values ("1", "yes") would blank out ordinary words
_GENERATE = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'"


def default_key_file() -> str:
    """Where the key is kept when ``$HEALER_SECRET_KEY`` is unset.

    ``$HEALER_SECRET_KEY_FILE`` when set; otherwise ``$XDG_CONFIG_HOME/universal-healer/
    secret.key`` (``~/.config`` when ``XDG_CONFIG_HOME`` is unset or not absolute).
    """
    if path := os.environ.get(ENV_KEY_FILE):
        return path
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config_home):  # the XDG spec says to ignore relative values
        config_home = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "universal-healer", "secret.key")


def _fernet(key: bytes | str, source: str) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # Never the value itself: a key that is almost right is almost a key.
        raise ConfigurationError(
            f"the secret key from {source} is not a Fernet key (32 url-safe base64-encoded "
            f"bytes); generate one with: {_GENERATE}"
        ) from None


def _read_key_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigurationError(
                    f"the secret key file {path} is open to other users "
                    f"(mode {stat.S_IMODE(mode):04o}); restrict it with: chmod 600 {path}"
                )
            return handle.read().strip()
    except OSError as err:
        raise ConfigurationError(f"cannot read the secret key file {path}: {err.strerror}") from err


def _create_key_file(path: str) -> None:
    """Write a new key to ``path`` unless another process got there first.

    The key is written to a private temporary file and linked into place, so no process ever
    reads a half-written key, and of two processes starting at once exactly one key wins.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temporary = f"{path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, Fernet.generate_key() + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        with contextlib.suppress(FileExistsError):  # another process made one: use theirs
            os.link(temporary, path)
    except OSError as err:
        raise ConfigurationError(
            f"cannot create the secret key file {path}: {err.strerror}; set {ENV_KEY} or "
            f"{ENV_KEY_FILE} instead"
        ) from err
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


class SecretBox:
    """Encrypts and decrypts secrets for storage at rest with one Fernet key.

    Tokens are ASCII text and authenticated: a token altered, truncated or made with another
    key is refused, never decrypted to garbage. Neither the key nor any plaintext appears in
    this object's repr or in an error message.

    :param key: a Fernet key (see :meth:`generate`).
    :param source: where the key came from, for messages (``"$HEALER_SECRET_KEY"``, a path).
    :raises ConfigurationError: when ``key`` is not a Fernet key.
    """

    __slots__ = ("_fernet", "source")

    def __init__(self, key: bytes | str, *, source: str = "the key given") -> None:
        self._fernet = _fernet(key, source)
        self.source = source

    def __repr__(self) -> str:
        return f"SecretBox(source={self.source!r})"

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a new random key that lives only in this process (for tests)."""
        return cls(Fernet.generate_key(), source="a generated key")

    @classmethod
    def from_environment(cls) -> SecretBox:
        """The box configured for this machine.

        ``$HEALER_SECRET_KEY`` when set; otherwise the key in :func:`default_key_file`, which is
        created on first use (mode 0600, in a directory created 0700).

        :raises ConfigurationError: when the key is malformed, or the key file cannot be read or
            created, or is readable by group or others (the message says how to fix it).
        """
        if key := os.environ.get(ENV_KEY):
            return cls(key.strip(), source=f"${ENV_KEY}")
        path = default_key_file()
        if not os.path.exists(path):
            _create_key_file(path)
        return cls(_read_key_file(path), source=path)

    # ----------------------------------------------------------------------------------------

    def encrypt(self, text: str) -> str:
        """``text`` encrypted, as a token to store."""
        return self._fernet.encrypt(text.encode("utf-8", "surrogateescape")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The text :meth:`encrypt` made ``token`` from.

        :raises ConfigurationError: when the token was made with another key or was damaged.
        """
        try:
            data = self._fernet.decrypt(token.encode("ascii", "replace"))
        except InvalidToken:
            # from None: nothing of the token or the key travels with the error.
            raise ConfigurationError(
                f"secrets were encrypted with another key than the one from {self.source} "
                f"(or were damaged); set {ENV_KEY} or {ENV_KEY_FILE} to the key they were "
                "stored with, or store them again"
            ) from None
        return data.decode("utf-8", "surrogateescape")

    def encrypt_mapping(self, values: Mapping[str, Any]) -> str:
        """A small JSON-able mapping encrypted, as a token to store.

        :raises TypeError: when a value cannot be written as JSON (its type is named, never
            its value).
        """
        try:
            text = json.dumps(dict(values), sort_keys=True)
        except (TypeError, ValueError) as err:
            raise TypeError(f"secrets must be JSON values: {type(err).__name__}") from None
        return self.encrypt(text)

    def decrypt_mapping(self, token: str) -> dict[str, Any]:
        """The mapping :meth:`encrypt_mapping` made ``token`` from.

        :raises ConfigurationError: when the token was made with another key or was damaged.
        """
        try:
            value = json.loads(self.decrypt(token))
        except json.JSONDecodeError:
            value = None  # a token of encrypt(), not of encrypt_mapping()
        if not isinstance(value, dict):
            raise ConfigurationError("stored secrets are not a mapping; store them again")
        return value


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``.

    Secrets shorter than four characters are left alone: they would blank out ordinary words
    and hide little. The longest secrets are replaced first, in one pass, so a secret that
    contains another is not left half visible.
    """
    values = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)
    if not values or not text:
        return text
    pattern = re.compile("|".join(map(re.escape, values)))
    return pattern.sub(REDACTED, text)


def redact_tree(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string redacted."""
    hidden = tuple(secrets)
    if isinstance(value, str):
        return redact(value, hidden)
    if isinstance(value, Mapping):
        return {key: redact_tree(item, hidden) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(item, hidden) for item in value]
    return value
