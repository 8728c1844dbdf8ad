"""The changes healing steps make that a command alone cannot express safely.

Each is a small attrs callable ``(host, app) -> account`` for a
:class:`~universal_healer.model.CallableStep`: it works through the host only, re-reads what it
changes at the moment it runs (never trusting a diagnosis made earlier), refuses when the site
changed meanwhile, and returns a short account without secrets. Raising fails the step, and the
executor restores the backup.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Sequence

import attrs

from healer_wordpress import logs, phpserial, site, wpconfig
from universal_healer._mysql import quote_identifier
from universal_healer.hosts.base import Host
from universal_healer.model import Application

__all__ = [
    "ConfirmNoNewFatal",
    "DeactivatePlugin",
    "DeleteExpiredTransients",
    "DisableDebug",
    "EditError",
    "RepairTables",
    "write_file",
]


class EditError(RuntimeError):
    """A step could not make its change; the message says why (and holds no secret)."""


# Replace a file the way an editor that cares would: write a temporary file beside it, give it
# the original's mode and owner, check that the original is still what was read, then rename
# over it (atomic on one filesystem). A chown that fails stops it: never change an owner.
_REPLACE = """set -eu
target=$1 expected=$2
tmp=$(mktemp -p "$(dirname -- "$target")" .healer-edit.XXXXXXXXXX)
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod --reference="$target" -- "$tmp"
chown --reference="$target" -- "$tmp"
actual=$(sha256sum < "$target")
if [ "${actual%% *}" != "$expected" ]; then
  echo "the file changed while it was being edited" >&2
  exit 3
fi
mv -f -- "$tmp" "$target"
trap - EXIT
"""


async def write_file(host: Host, path: str, data: bytes, *, original: bytes) -> None:
    """Replace ``path`` with ``data``, keeping its mode and owner, only if it still holds
    ``original``.

    :raises EditError: the file changed meanwhile, or it could not be replaced.
    """
    expected = hashlib.sha256(original).hexdigest()
    result = await host.run(("sh", "-c", _REPLACE, "sh", path, expected), input=data, timeout=60)
    if not result.ok:
        said = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise EditError(f"could not rewrite {posixpath.basename(path)}: {said[-1] if said else ''}")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


@attrs.frozen
class DisableDebug:
    """Set the debug constants to ``false`` in ``wp-config.php``: only those ``define`` values
    change, every other byte of the file stays."""

    path: str
    names: tuple[str, ...]

    async def __call__(self, host: Host, app: Application) -> str:
        text = await site.read_text(host, self.path)
        if text is None:
            raise EditError("wp-config.php is gone")
        edit = wpconfig.set_false(text, self.names)
        if edit.refused:
            raise EditError("; ".join(edit.refused))
        if not edit.changed:
            return f"{', '.join(self.names)} already false in wp-config.php: nothing to change"
        await write_file(host, self.path, _encode(edit.text), original=_encode(text))
        return f"set {', '.join(edit.changed)} to false in wp-config.php"


@attrs.frozen
class DeleteExpiredTransients:
    """Delete expired transients and their timeouts, as WordPress's own
    ``delete_expired_transients()`` does, plus timeouts left without a value."""

    async def __call__(self, host: Host, app: Application) -> str:
        config = await site.load_config(host, app)
        async with site.connect(host, config.settings, timeout=300) as db:
            options = db.table("options")
            statements = []
            for kind, skip in (("transient", 12), ("site_transient", 17)):
                like = kind.replace("_", "!_")
                statements.append(
                    f"DELETE a, b FROM {options} a, {options} b "
                    f"WHERE a.option_name LIKE '!_{like}!_%' ESCAPE '!' "
                    f"AND a.option_name NOT LIKE '!_{like}!_timeout!_%' ESCAPE '!' "
                    f"AND b.option_name = CONCAT('_{kind}_timeout_', SUBSTRING(a.option_name, "
                    f"{skip})) AND b.option_value < UNIX_TIMESTAMP();"
                )
                statements.append(
                    f"DELETE FROM {options} "  # noqa: S608 - quoted names
                    f"WHERE option_name LIKE '!_{like}!_timeout!_%' ESCAPE '!' "
                    "AND CAST(option_value AS UNSIGNED) < UNIX_TIMESTAMP();"
                )
            rows = await db.rows(
                "\n".join(f"{statement}\nSELECT ROW_COUNT();" for statement in statements),
                what="deleting expired transients",
            )
        deleted = sum(max(int(r[0]), 0) for r in rows if r and r[0].lstrip("-").isdigit())
        return f"deleted {deleted} expired transient row(s)"


def _table_errors(rows: Sequence[Sequence[str]]) -> list[str]:
    """What ``REPAIR``/``OPTIMIZE TABLE`` reported as failed (last status not OK, or errors)."""
    errors: list[str] = []
    status: dict[str, str] = {}
    for row in rows:
        if len(row) < 4:
            continue
        table, kind, text = row[0], row[2].lower(), row[3]
        if kind == "error":
            errors.append(f"{table}: {text}")
        elif kind == "status":
            status[table] = text
    errors += [
        f"{t}: {s}" for t, s in status.items() if s not in ("OK", "Table is already up to date")
    ]
    return errors


@attrs.frozen
class RepairTables:
    """``REPAIR TABLE`` the crashed MyISAM/Aria tables and ``OPTIMIZE TABLE`` the fragmented
    InnoDB ones; any error the server reports fails the step."""

    repair: tuple[str, ...] = ()
    optimize: tuple[str, ...] = ()

    async def __call__(self, host: Host, app: Application) -> str:
        config = await site.load_config(host, app)
        said: list[str] = []
        async with site.connect(host, config.settings, timeout=3600) as db:
            for verb, tables in (("REPAIR", self.repair), ("OPTIMIZE", self.optimize)):
                if not tables:
                    continue
                names = ", ".join(quote_identifier(t) for t in tables)
                rows = await db.rows(f"{verb} TABLE {names}", what=f"{verb.lower()}ing tables")
                errors = _table_errors(rows)
                if errors:
                    raise EditError(f"{verb} TABLE failed: {'; '.join(errors)[:500]}")
                said.append(f"{verb} TABLE {', '.join(tables)}: OK")
        return "; ".join(said) or "no table to repair or optimize"


@attrs.frozen
class DeactivatePlugin:
    """Take a plugin out of ``active_plugins``, written back in PHP's serialization, and only if
    the option did not change since it was read (WordPress may write it meanwhile)."""

    plugin: str

    async def __call__(self, host: Host, app: Application) -> str:
        config = await site.load_config(host, app)
        async with site.connect(host, config.settings) as db:
            raw = await db.option("active_plugins")
            if raw is None:
                raise EditError("no active_plugins option")
            try:
                value = phpserial.loads(raw)
            except phpserial.PhpSerialError as err:
                raise EditError(f"active_plugins is not a serialized array ({err})") from None
            if not isinstance(value, dict):
                raise EditError("active_plugins is not an array")
            keep = [e for e in value.values() if not _names(e, self.plugin)]
            dropped = [str(e) for e in value.values() if _names(e, self.plugin)]
            if not dropped:
                return f"{self.plugin} is not active any more: nothing to change"
            if not await db.set_option_if("active_plugins", raw, phpserial.dumps(keep)):
                raise EditError("active_plugins changed while it was being edited")
        return f"removed {', '.join(dropped)} from active_plugins"


def _names(entry: object, plugin: str) -> bool:
    return isinstance(entry, str) and site.plugin_key(entry) == plugin


@attrs.frozen
class ConfirmNoNewFatal:
    """Load the site once over HTTP and read what its logs got meanwhile: a new fatal error
    from the plugin fails the step."""

    plugin: str
    log_files: tuple[str, ...]
    plugin_dir: str
    address: str | None = site.LOCAL_ADDRESS

    async def __call__(self, host: Host, app: Application) -> str:
        sizes = {}
        for path in self.log_files:
            found = await host.stat(path)
            sizes[path] = found.size if found is not None else 0
        config = await site.load_config(host, app)
        async with site.connect(host, config.settings) as db:
            url = config.settings.get("WP_HOME") or await db.value("home")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return "the site has no http(s) address to load; the check re-runs instead"
        answer = await site.http_get(host, url, address=self.address)
        for path, size in sizes.items():
            result = await host.run(("tail", "-c", f"+{size + 1}", "--", path), timeout=30)
            lines = result.stdout.decode("utf-8", "replace").splitlines() if result.ok else []
            for fatal in logs.fatals(lines, plugin_dirs=(self.plugin_dir,)):
                if fatal.plugin == self.plugin:
                    raise EditError(
                        f"{self.plugin} still causes fatal errors after it was deactivated: "
                        f"{fatal.message[:200]}"
                    )
        status = answer.status if answer.status is not None else f"no answer: {answer.error}"
        return f"loaded {url} (HTTP {status}); no new fatal error from {self.plugin}"
