"""The Registry's plugin states: which plugins the operator enabled, and what they declare."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from universal_healer.model import utcnow
from universal_healer.registry._base import RegistryBase
from universal_healer.registry._records import PluginInfo, new_id
from universal_healer.registry.models import TechStackPluginRow

__all__ = ["PluginStates"]


class PluginStates(RegistryBase):
    """Registry methods for the ``tech_stack_plugins`` table."""

    __slots__ = ()

    def plugin_states(self) -> dict[str, bool]:
        """Whether each plugin the registry knows of is enabled, by plugin name."""
        with self._guard("reading plugin states"):
            query = TechStackPluginRow.select(
                TechStackPluginRow.name, TechStackPluginRow.is_enabled
            )
            return {row.name: bool(row.is_enabled) for row in query.bind(self._db)}

    def set_plugin_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a plugin by name, remembering it even if it is not installed."""

        def store() -> None:
            now = utcnow()
            query = TechStackPluginRow.update(is_enabled=enabled, updated_at=now).where(
                TechStackPluginRow.name == name
            )
            if query.execute(self._db):
                return
            exists = TechStackPluginRow.select().where(TechStackPluginRow.name == name)
            if not exists.exists(self._db):
                self._insert_plugin(name, "", (), builtin=False, distribution=None, enabled=enabled)

        with self._guard(f"setting the state of plugin {name!r}"):
            self._retrying(store)

    def _insert_plugin(
        self,
        name: str,
        version: str,
        stacks: Sequence[str],
        *,
        builtin: bool,
        distribution: str | None,
        enabled: bool,
    ) -> None:
        now = utcnow()
        TechStackPluginRow.insert(
            id=new_id(),
            name=name,
            tech_stack=list(stacks),
            version=version,
            is_enabled=enabled,
            is_built_in=builtin,
            distribution=distribution,
            configuration={},
            created_at=now,
            updated_at=now,
        ).execute(self._db)

    def sync_plugins(self, plugins: Iterable[PluginInfo]) -> None:
        """Record the installed plugins' metadata; a new plugin starts enabled.

        An existing row takes the new version, stacks, built-in flag and distribution but keeps
        its enabled state: that is the operator's. Rows of plugins no longer installed stay.
        """

        plugins_list = list(plugins)

        def sync() -> None:
            query = TechStackPluginRow.select()
            known = {row.name: row for row in query.bind(self._db)}
            for name, version, stacks, builtin, distribution in plugins_list:
                row = known.get(name)
                if row is None:
                    self._insert_plugin(
                        name,
                        version,
                        stacks,
                        builtin=builtin,
                        distribution=distribution,
                        enabled=True,
                    )
                    continue
                metadata = {
                    "version": version,
                    "tech_stack": list(stacks),
                    "is_built_in": builtin,
                    "distribution": distribution,
                }
                if {key: getattr(row, key) for key in metadata} != metadata:
                    TechStackPluginRow.update(updated_at=utcnow(), **metadata).where(
                        TechStackPluginRow.id == row.id
                    ).execute(self._db)

        with self._guard("recording plugins"):
            self._retrying(sync)
