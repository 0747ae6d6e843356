"""The ``zest-mock`` command line: renders results, holds no logic (``root`` wires the commands).

Partners call it from scripts, so it starts light: a command module imports only click, the standard library,
``cli.common`` and ``mock_server.presets`` at its top; whatever a command needs beyond that (the settings, the
control client and its socket, the app, uvicorn, the harness, httpx, jwt, yaml...) is imported inside the command
function. ``--help``, ``--version`` and the control-plane commands thus load none of the app
(contract_tests/test_cli_imports.py holds that), and ``root`` imports a command's module only when that command is
used.
"""

from mock_server.cli.root import main

__all__ = ["main"]
