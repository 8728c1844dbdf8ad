"""The plugin manager: isolation of broken plugins, lineage, merging and ordering."""

from __future__ import annotations

import types

import pytest

from universal_healer.checks import CheckContext, DiagnosticCheck
from universal_healer.hookspecs import hookimpl
from universal_healer.hosts import HostFacts
from universal_healer.metrics import Metrics
from universal_healer.model import (
    CheckCategory,
    CheckResult,
    Detection,
    ProbeFile,
    RiskLevel,
    SiteProbe,
    StackInfo,
)
from universal_healer.plugins import BUILTIN_PLUGINS, build_plugin_manager


def _check(check_name: str, origin: str) -> DiagnosticCheck:
    class _Check(DiagnosticCheck):
        name = check_name
        category = CheckCategory.CONFIGURATION
        severity = RiskLevel.LOW
        description = origin

        async def run(self, ctx: CheckContext) -> CheckResult:
            return ctx.passed(origin)

    return _Check()


def _plugin(**hooks: object) -> types.SimpleNamespace:
    """A plugin object whose attributes are hook implementations."""
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


FAMILY = _plugin(
    healer_stacks=lambda: [
        StackInfo(id="base", display_name="Base"),
        StackInfo(id="child", display_name="Child", parent="base"),
    ],
    healer_get_checks=lambda stack: {
        "base": [_check("shared_name", "base"), _check("base_only", "base")],
        "child": [_check("shared_name", "child")],
    }.get(stack.id, []),
    healer_probe_files=lambda: [ProbeFile(path="a.json", max_bytes=10)],
)


def _manager(*plugins: tuple[str, object], disabled: tuple[str, ...] = ()):
    return build_plugin_manager(
        load_entry_points=False, extra=plugins, disabled=disabled, metrics=Metrics.create()
    )


class TestLoading:
    def test_builtin_plugins_are_registered_under_their_module_names(self):
        manager = _manager()
        names = {info.name for info in manager.plugins() if info.builtin}
        assert names == set(BUILTIN_PLUGINS)
        assert not manager.failures

    def test_a_disabled_plugin_is_listed_but_contributes_nothing(self):
        manager = _manager(("family", FAMILY), disabled=("family",))
        info = {i.name: i for i in manager.plugins()}["family"]
        assert info.enabled is False
        assert manager.stack("child") is None

    def test_a_plugin_that_fails_to_load_is_reported_and_others_still_work(self):
        manager = build_plugin_manager(
            load_entry_points=False,
            extra=[("family", FAMILY)],
            metrics=Metrics.create(),
            import_module=lambda name: (_ for _ in ()).throw(ImportError(f"broken {name}")),
        )
        assert manager.stack("child") is not None
        broken = [i for i in manager.plugins() if i.error]
        assert {i.name for i in broken} == set(BUILTIN_PLUGINS)
        assert all("ImportError: broken" in i.error for i in broken)
        assert all(f.hook is None for f in manager.failures)

    def test_two_plugins_with_one_name_keep_the_first(self):
        manager = _manager(("family", FAMILY), ("family", _plugin()))
        assert manager.stack("child") is not None
        assert [f.plugin for f in manager.failures] == ["family"]


class TestIsolation:
    def test_a_plugin_raising_in_detect_is_counted_and_the_others_still_answer(self):
        metrics = Metrics.create()

        def explode(probe: SiteProbe) -> Detection:
            raise RuntimeError("kaboom")

        good = _plugin(
            healer_detect=lambda probe: Detection(stack="child", confidence=0.5),
        )
        manager = build_plugin_manager(
            load_entry_points=False,
            extra=[("family", FAMILY), ("good", good), ("bad", _plugin(healer_detect=explode))],
            metrics=metrics,
        )
        found = manager.detect(SiteProbe(host="h", root="/srv/x"))
        assert [(d.stack, d.plugin) for d in found] == [("child", "good")]
        assert [(f.plugin, f.hook) for f in manager.failures] == [("bad", "healer_detect")]
        assert "RuntimeError: kaboom" in manager.failures[0].reason
        sample = metrics.registry.get_sample_value(
            "healer_plugin_errors_total", {"plugin": "bad", "hook": "healer_detect"}
        )
        assert sample == 1.0

    @pytest.mark.parametrize(
        "answer",
        [
            pytest.param("not a list", id="a-string"),
            pytest.param([object()], id="a-list-of-junk"),
        ],
    )
    def test_a_plugin_returning_the_wrong_type_is_reported(self, answer):
        manager = _manager(("junk", _plugin(healer_stacks=lambda: answer)))
        assert manager.stack("junk") is None
        assert any(f.plugin == "junk" and f.hook == "healer_stacks" for f in manager.failures)

    def test_a_detection_of_an_undeclared_stack_is_dropped(self):
        rogue = _plugin(healer_detect=lambda probe: Detection(stack="ghost", confidence=0.9))
        manager = _manager(("rogue", rogue))
        assert manager.detect(SiteProbe(host="h", root="/x")) == ()
        assert "undeclared stack 'ghost'" in manager.failures[-1].reason

    def test_a_duplicate_stack_id_is_reported_against_the_later_plugin(self):
        again = _plugin(healer_stacks=lambda: [StackInfo(id="base", display_name="Again")])
        manager = _manager(("family", FAMILY), ("zz-again", again))
        assert manager.stack("base").display_name == "Base"
        assert [f.plugin for f in manager.failures] == ["zz-again"]


FACTS = HostFacts(
    hostname="h", cpu_count=1, load_average=(0.0, 0.0, 0.0),
    memory_total_bytes=1, memory_available_bytes=1, processes=("basesrv",),
)  # fmt: skip


class TestDetectServices:
    def test_no_plugin_detects_services_by_default(self):
        manager = _manager(("family", FAMILY))
        assert manager.detects_services is False
        assert manager.detect_services(FACTS) == ()

    def test_each_plugin_is_called_on_its_own_and_bad_answers_are_dropped(self):
        metrics = Metrics.create()

        def explode(facts: HostFacts) -> list[Detection]:
            raise RuntimeError("kaboom")

        def good(facts: HostFacts) -> list[Detection]:
            if "basesrv" not in facts.processes:
                return []
            return [Detection(stack="base", confidence=0.8, root="/var/lib/base")]

        manager = build_plugin_manager(
            load_entry_points=False,
            extra=[
                ("family", FAMILY),
                ("good", _plugin(healer_detect_services=good)),
                ("bad", _plugin(healer_detect_services=explode)),
                ("ghost", _plugin(healer_detect_services=lambda facts: [
                    Detection(stack="ghost", confidence=0.9, root="/var/lib/ghost")])),
                ("rootless", _plugin(healer_detect_services=lambda facts: [
                    Detection(stack="base", confidence=0.9)])),
                ("junk", _plugin(healer_detect_services=lambda facts: "not a list")),
            ],
            metrics=metrics,
        )  # fmt: skip
        assert manager.detects_services is True
        found = manager.detect_services(FACTS)
        assert [(d.stack, d.root, d.plugin) for d in found] == [("base", "/var/lib/base", "good")]
        failures = {f.plugin: f.reason for f in manager.failures}
        assert set(failures) == {"bad", "ghost", "rootless", "junk"}
        assert "RuntimeError: kaboom" in failures["bad"]
        assert "undeclared stack 'ghost'" in failures["ghost"]
        assert "without a root" in failures["rootless"]
        assert all(f.hook == "healer_detect_services" for f in manager.failures)
        sample = metrics.registry.get_sample_value(
            "healer_plugin_errors_total", {"plugin": "bad", "hook": "healer_detect_services"}
        )
        assert sample == 1.0


class TestLineage:
    def test_a_child_stack_gets_its_parents_checks_and_wins_on_a_shared_name(self):
        manager = _manager(("family", FAMILY))
        checks = {c.name: c.description for c in manager.checks_for("child")}
        assert checks["shared_name"] == "child"
        assert checks["base_only"] == "base"

    def test_lineage_is_child_first(self):
        manager = _manager(("family", FAMILY))
        assert [s.id for s in manager.lineage("child")] == ["child", "base"]

    def test_an_unknown_stack_has_no_lineage_and_no_checks(self):
        manager = _manager(("family", FAMILY))
        assert manager.lineage("uninstalled") == ()
        assert manager.checks_for("uninstalled") == ()

    def test_two_plugins_giving_one_check_name_for_one_stack_is_reported_once(self):
        """Results, strategies and approvals refer to checks by name: two of one name would
        mix. The first plugin by name keeps it; the other is reported, once per manager."""
        rival = _plugin(
            healer_get_checks=lambda stack: (
                [_check("base_only", "rival")] if stack.id == "base" else []
            )
        )
        manager = _manager(("family", FAMILY), ("rival", rival))
        for _ in range(3):
            checks = {c.name: c.description for c in manager.checks_for("child")}
            assert checks["base_only"] == "base"
        [failure] = manager.failures
        assert (failure.plugin, failure.hook) == ("rival", "healer_get_checks")
        assert "'base_only' for stack 'base' is plugin 'family''s too" in failure.reason
        errors = manager.metrics.registry.get_sample_value(
            "healer_plugin_errors_total", {"plugin": "rival", "hook": "healer_get_checks"}
        )
        assert errors == 1

    def test_a_child_overriding_its_parents_check_is_no_conflict(self):
        manager = _manager(("family", FAMILY))
        manager.checks_for("child")
        assert manager.failures == []


class TestProbeFiles:
    def test_requests_for_one_path_merge_to_the_largest_cap_and_any_marker(self):
        other = _plugin(
            healer_probe_files=lambda: [ProbeFile(path="a.json", marker=True, max_bytes=5)]
        )
        manager = _manager(("family", FAMILY), ("other", other))
        merged = {f.path: f for f in manager.probe_files()}["a.json"]
        assert merged.marker is True
        assert merged.max_bytes == 10
