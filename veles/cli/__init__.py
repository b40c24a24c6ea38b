"""The `veles` command line: one entry point, a sub-command per job.

Sub-commands are imported when they are called, not when `veles` starts: between them they pull
in Ray, the report renderers, the engine and the benchmarks, which made every `veles …` pay for
all of them before it did anything (`veles db upgrade` as slow to start as `veles bench`).
`veles --help` still lists every command, by importing each one then.
"""

from __future__ import annotations

import importlib

import typer
from typer import _click as click  # Typer vendors its own click; its groups take these types
from typer.core import TyperGroup

# name -> (module under veles.cli, attribute, is it a group of sub-commands)
SUBCOMMANDS: dict[str, tuple[str, str, bool]] = {
    "admin": ("admin", "app", True),
    "db": ("db", "app", True),
    "billing": ("billing", "app", True),
    "risk": ("risk", "app", True),
    "bench": ("bench", "app", True),
    "reports": ("reports", "app", True),
    "mt5": ("mt5", "app", True),
    "engine": ("engine", "run_engine", False),
    "demo": ("demo", "run_demo", False),
    "doctor": ("doctor", "run_doctor", False),
    "portal": ("portal", "run_portal", False),
    "chaos": ("chaos", "run_chaos", False),
    "stress": ("stress", "run_stress_command", False),
    "var": ("var", "run_var", False),
}


def load_subcommand(name: str) -> click.Command:
    """The click command behind `veles <name>`, its module imported now."""
    module_name, attribute, is_group = SUBCOMMANDS[name]
    target = getattr(importlib.import_module(f"veles.cli.{module_name}"), attribute)
    if is_group:
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer()
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyCommands(TyperGroup):
    """A Typer group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in SUBCOMMANDS if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in SUBCOMMANDS:
            self.commands[cmd_name] = load_subcommand(cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=LazyCommands,
    help="Veles: real-time risk management for MetaTrader 5 brokerages.",
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """Veles: real-time risk management for MetaTrader 5 brokerages."""
