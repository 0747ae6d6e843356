"""The ``zest-mock`` command group: every command registered on one root."""

from __future__ import annotations

import click

from mock_server import __version__
from mock_server.cli import control, harness, serving


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zest-mock")
def main() -> None:
    """zest-mock: a local, faithful fake of the Zest Partner API, on a simulated clock."""


for command in (
    serving.serve, serving.token,
    control.clock, control.admin, control.webhooks, control.state_command, control.reset_command,
    control.requests_command, control.dev_credentials_command,
    harness.scenario, harness.verify_receiver_command, harness.conformance_command,
):
    main.add_command(command)
