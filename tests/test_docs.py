"""The docs keep up with the code: every hook has its page, every CLI command and exit code is
documented (datasette's rule: a test fails when a hook is undocumented)."""

from __future__ import annotations

import inspect
import pathlib
import re
from collections.abc import Callable, Iterator

import click
import pytest

from universal_healer import hookspecs
from universal_healer.cli import ExitCode, cli

DOCS = pathlib.Path(__file__).parents[1] / "docs"
CLI_PAGE = DOCS / "cli.md"


def hooks() -> list[Callable[..., object]]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return [
        function
        for name, function in sorted(vars(hookspecs).items())
        if name.startswith("healer_") and hasattr(function, marker)
    ]


def signature(hook: Callable[..., object]) -> str:
    """The hook's signature as written in hookspecs.py: ``healer_detect(probe: SiteProbe) ->
    Detection | None`` (annotations are strings there, so they read as the source does)."""
    spec = inspect.signature(hook)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in spec.parameters.values())
    return f"{hook.__name__}({params}) -> {spec.return_annotation}"


def first_heading(page: pathlib.Path) -> str:
    for line in page.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip().strip("`")
    return ""


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command under ``group`` with its path (``plugins disable``), groups included."""
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} ")


def sections(page: pathlib.Path) -> dict[str, str]:
    """The level-2 sections of a page by heading, backticks removed."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^## ", page.read_text(), flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        found[heading.strip().strip("`")] = body
    return found


def documented_names(command: click.Command) -> list[str]:
    """What the page must mention for ``command``: each option's long flag and each argument."""
    names = []
    for param in command.params:
        if isinstance(param, click.Argument):
            names.append(param.human_readable_name)
        elif not param.hidden:
            names.append(max(param.opts, key=len))
    return names


class TestHookPages:
    def test_there_are_hooks_to_document(self):
        assert len(hooks()) == 7

    @pytest.mark.parametrize("hook", [pytest.param(h, id=h.__name__) for h in hooks()])
    def test_each_hook_has_a_page_headed_by_its_exact_signature(self, hook):
        page = DOCS / "plugins" / "hooks" / f"{hook.__name__}.md"
        assert page.is_file(), f"hook {hook.__name__} has no page {page.relative_to(DOCS)}"
        assert first_heading(page) == signature(hook)

    @pytest.mark.parametrize("hook", [pytest.param(h, id=h.__name__) for h in hooks()])
    def test_each_hook_page_is_linked_from_the_plugins_index(self, hook):
        index = (DOCS / "plugins" / "index.md").read_text()
        assert f"hooks/{hook.__name__}" in index


class TestCliPage:
    @pytest.mark.parametrize(
        ("path", "command"), [pytest.param(p, c, id=p) for p, c in commands(cli)]
    )
    def test_each_command_has_a_section_naming_its_options_and_arguments(self, path, command):
        section = sections(CLI_PAGE).get(f"healer {path}")
        assert section is not None, f"docs/cli.md has no section '## `healer {path}`'"
        missing = [name for name in documented_names(command) if name not in section]
        assert not missing, f"`healer {path}` section does not mention {missing}"

    def test_the_global_options_are_documented(self):
        section = sections(CLI_PAGE)["Global options"]
        wanted = [*documented_names(cli), "--help", "HEALER_DATABASE_URL"]
        assert [name for name in wanted if name not in section] == []

    @pytest.mark.parametrize("code", [pytest.param(c, id=c.name) for c in ExitCode])
    def test_each_exit_code_is_in_the_table(self, code):
        table = sections(CLI_PAGE)["Exit codes"]
        row = re.compile(rf"^\| {code.value} \| `{code.name}` \| \S", re.MULTILINE)
        assert row.search(table), f"docs/cli.md's exit-code table has no row for {code!r}"

    def test_the_exit_code_table_has_no_stale_rows(self):
        table = sections(CLI_PAGE)["Exit codes"]
        rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", table, flags=re.MULTILINE)
        assert rows == [(str(code.value), code.name) for code in ExitCode]
