"""Every command's --help shows each option's default and env var, an example, and no type noise."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer._click import Command, Context
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from trade_ops.cli import app

pytestmark = pytest.mark.unit


def _commands() -> list[tuple[list[str], Command, Context]]:
    """(path, command, context) of every leaf command, walking groups as the CLI resolves them."""
    root = typer.main.get_command(app)
    found: list[tuple[list[str], Command, Context]] = []

    def walk(cmd: Command, path: list[str], ctx: Context) -> None:
        if not isinstance(cmd, TyperGroup):
            found.append((path, cmd, ctx))
            return
        for name in cmd.commands:
            sub = cmd.get_command(ctx, name)
            assert sub is not None, name
            walk(sub, [*path, name], Context(sub, info_name=name, parent=ctx))

    walk(root, [], Context(root, info_name="trade-ops"))
    return found


COMMANDS = _commands()


def _help(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    return result.output


def _rows(text: str) -> dict[str, str]:
    """Each option's row of the help panels, by its first long name, continuation lines joined."""
    rows: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        inner = line.strip().strip("│").strip()
        match = re.match(r"(?:\*\s+)?(--[\w-]+)", inner)  # "*" marks a required option
        if match:
            current = match.group(1)
            rows[current] = inner
        elif current and inner and not line.lstrip().startswith(("╰", "╭")):
            rows[current] += " " + inner
        else:
            current = None
    return rows


@pytest.mark.parametrize(("path", "command", "ctx"), COMMANDS, ids=[" ".join(p) for p, _, _ in COMMANDS])
def test_help_shows_every_default_and_env_var(path: list[str], command: Command, ctx: Context) -> None:
    text = _help(path)
    for noise in ("<bool>", "<str>", "<int>", "<float", "<list", "<path>"):
        assert noise not in text, f"{' '.join(path)} --help shows {noise}"
    assert "Examples:" in text and f"$ trade-ops {' '.join(path)}" in text
    rows = _rows(text)
    for param in command.get_params(ctx):
        if not isinstance(param, TyperOption) or param.name == "help":
            continue
        row = rows[param.opts[0] if param.opts[0].startswith("--") else param.opts[-1]]
        if param.envvar:
            assert f"[env var: {param.envvar}]" in row, row
        if (param.is_flag and not param.secondary_opts) or param.required:  # a plain flag's default is
            continue  # its absence; a required option has none
        expected = param.show_default if isinstance(param.show_default, str) else param.default
        if isinstance(expected, bool):  # --x/--no-x shows the name that is on by default
            expected = (param.opts if expected else param.secondary_opts)[0].lstrip("-")
        assert f"[default: {expected}]" in row, f"{' '.join(path)} {param.opts[0]}: {row}"


def test_brackets_in_help_survive_rich_markup() -> None:
    # "[default: ./.trade-ops]" was eaten as a markup tag, leaving "...NATS data and lake ."
    rows = _rows(_help(["up"]))
    assert "lake ." not in rows["--run-dir"]
    assert "[default: the nearest .trade-ops/ here or above, else ./.trade-ops]" in rows["--run-dir"]
    assert "[default: 0]" in rows["--port-offset"]


def test_doctor_help_shows_the_three_commonest_invocations() -> None:
    text = _help(["doctor"])
    examples = text[text.index("Examples:"):]
    assert len(re.findall(r"\$ trade-ops doctor", examples)) == 3
    assert "$ trade-ops doctor --up" in examples


def test_completion_is_offered() -> None:
    text = _help([])
    assert "--install-completion" in text and "--show-completion" in text
