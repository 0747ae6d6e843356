"""The ``zest-mock`` command group: every command registered on one root, each imported when it is used.

A command's module (``serving``, ``control``, ``harness``) is imported by the first lookup of one of its commands:
``--version`` imports none of them, a control command only ``control``; ``--help``, which lists every command with
its short help, imports them all.
"""

from __future__ import annotations

import importlib

import click

from mock_server import __version__

# name -> (module under mock_server.cli, attribute): the whole command line, in one table
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serving", "serve"), "token": ("serving", "token"),
    "clock": ("control", "clock"), "admin": ("control", "admin"), "webhooks": ("control", "webhooks"),
    "state": ("control", "state_command"), "reset": ("control", "reset_command"),
    "requests": ("control", "requests_command"), "dev-credentials": ("control", "dev_credentials_command"),
    "scenario": ("harness", "scenario"), "verify-receiver": ("harness", "verify_receiver_command"),
    "conformance": ("harness", "conformance_command"),
}


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"mock_server.cli.{module}"), attribute)
        assert isinstance(command, click.Command) and command.name == cmd_name, cmd_name
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zest-mock")
def main() -> None:
    """zest-mock: a local, faithful fake of the Zest Partner API, on a simulated clock."""
