"""What `--help` shows, made the same for every command in one pass over the command tree.

Typer's defaults hide what a user needs and show what they do not: an option whose
default is None shows none, Rich markup in a help string swallows text in brackets
("[default: ./.trade-ops]" vanished), and every value is labelled with Python types
(`<bool>`, `<list[str]>`). This pass, run once when the root group is built:

- shows every option's default: its value, or the text given as `show_default="..."`,
  or a "[default: X]" / "(default: X)" written at the end of its help (moved out of the
  help, so no markup can eat it);
- shows every option's environment variable;
- labels values the way click does (INTEGER, FLOAT, TEXT, PATH, a|b) and flags not at all;
- escapes Rich markup in option help, so brackets print as written.

It also keeps `--json`'s promise for the errors click finds itself (a value it cannot
parse, an unknown flag): one JSON error document on stdout, exit 2, beside click's own
message on stderr.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape
from typer._click import Command, Context, Parameter
from typer._click.exceptions import UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["TradeOpsGroup", "examples", "polish"]

# "[default: X]" or "(default: X)" anywhere in a help string (the text inside has no brackets).
_DEFAULT_IN_HELP = re.compile(r"\s*[\[(]default:\s*([^\])]+)[\])]\s*")


_LABELS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "file": "FILE"}


def _value_label(param: TyperOption, ctx: Context) -> str | None:
    if param.is_flag or param.count:
        return None
    typed = param.display_type(ctx).strip("<>")  # "int", "float range", "list[str]", "a|b"
    bare = typed.removeprefix("list[").removesuffix("]").removesuffix(" range")
    return _LABELS.get(bare, bare)


class _Option(TyperOption):
    def display_type_rich(self, ctx: Context) -> str | None:
        return self.metavar if self.metavar is not None else _value_label(self, ctx)

    def _get_default_string(self, *, ctx: Context, show_default_is_str: bool,
                            default_value: Any) -> str:
        if show_default_is_str:  # typer would wrap it in parentheses
            return str(self.show_default)
        return super()._get_default_string(ctx=ctx, show_default_is_str=False, default_value=default_value)


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Context) -> str | None:
        return self.metavar


def _without(text: str, start: int, end: int) -> str:
    before, after = text[:start].rstrip(), text[end:].lstrip()
    return before + after if after[:1] in (".", ",", ";", ":", ")", "") else f"{before} {after}"


def _polish_param(param: Parameter) -> None:
    if isinstance(param, TyperOption) and not isinstance(param, _Option):
        param.__class__ = _Option
        help_text = param.help or ""
        found = _DEFAULT_IN_HELP.search(help_text)
        if found and not isinstance(param.show_default, str):
            param.show_default = found.group(1).strip()
            help_text = _without(help_text, found.start(), found.end())
        elif param.required:
            pass  # "[required]" says it all
        elif param.multiple and param.default is None and not isinstance(param.show_default, str):
            param.show_default = "none"  # a repeatable option not given
        elif param.show_default is None or param.show_default is False:
            param.show_default = True
        param.help = escape(help_text)
        if param.envvar:
            param.show_envvar = True
    elif isinstance(param, TyperArgument) and not isinstance(param, _Argument):
        param.__class__ = _Argument
        if param.help:
            param.help = escape(param.help)


def polish(command: Command, ctx: Context) -> None:
    """Apply the help conventions to `command`'s parameters (--help included)."""
    for param in command.get_params(ctx):
        _polish_param(param)


class TradeOpsGroup(TyperGroup):
    """A group whose own help, and every command's under it, follows the conventions above."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        for param in params:
            _polish_param(param)
        return params

    def invoke(self, ctx: Context) -> Any:
        args = [*ctx._protected_args, *ctx.args]  # the command's own, before click consumes them
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            if "--json" in args and not getattr(exc, "json_printed", False):
                _print_usage_document(exc)
            raise

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, TyperGroup) and not isinstance(command, TradeOpsGroup):
            command.__class__ = TradeOpsGroup  # a sub-group (`report`): the same conventions below it
        if command is not None:
            polish(command, ctx)
        return command


def _print_usage_document(exc: UsageError) -> None:
    from trade_ops import console
    from trade_ops.errors import ExitCode

    hint = f"see `{exc.ctx.command_path} --help`" if exc.ctx is not None else None
    console.print_json(console.error_document(exc.format_message(), ExitCode.USAGE, hint))
    exc.json_printed = True  # type: ignore[attr-defined]  # once, though groups nest (report perf)


def examples(*lines: tuple[str, str]) -> str:
    """An epilog of (command, what it does) pairs, kept as written (no rewrapping)."""
    body = "\n".join(f"  $ {cmd}\n      {what}" for cmd, what in lines)
    return f"Examples:\n\n\b\n{body}"
