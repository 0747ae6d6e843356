"""The ``zest-mock`` command line: renders results, holds no logic (``root`` wires the commands)."""

from mock_server.cli.control import Duration
from mock_server.cli.root import main

__all__ = ["Duration", "main"]
