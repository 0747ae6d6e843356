"""What the command modules share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_URL = "http://localhost:8080"


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (what ``--json`` asks for); json is imported by the first command that
    prints it."""
    import json

    click.echo(json.dumps(value, indent=2))


class FilePath(click.Path):
    """``click.Path`` that gives a ``pathlib.Path``, importing pathlib when a value is converted: ``--help`` and the
    commands that take no path do without it."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        from pathlib import Path

        return Path(super().convert(value, param, ctx))
