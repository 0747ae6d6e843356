"""A partner's scripts call the CLI often: its help, its version and its control-plane clients load neither the app
nor its dependencies, whatever commands are registered. Measured in a fresh interpreter (``sys.modules`` after the
command ran), not in time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import live_server, settings

from mock_server.app import create_app

HEAVY = ("mock_server.app", "mock_server.models", "mock_server.store", "starlette", "pydantic", "uvicorn",
         "httpx", "jwt", "cryptography", "yaml", "multipart")

# Runs one command in-process the way the console script does, then reports which heavy modules it loaded.
PROBE = """
import json, sys
from mock_server.cli import main
try:
    main(sys.argv[1:], prog_name="zest-mock")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({name.split(".")[0] if not name.startswith("mock_server") else name for name in sys.modules
                if name.split(".")[0] in HEAVY or name in HEAVY})
print("PROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


def probe(*args: str, watched: tuple[str, ...] = HEAVY) -> dict[str, object]:
    """Run ``zest-mock ARGS``; report its exit code and which of the ``watched`` modules (or packages) it loaded."""
    code = f"HEAVY = {watched!r}\n{PROBE}"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("PROBE "))
    result: dict[str, object] = json.loads(line.split(" ", 1)[1])
    return result


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["clock", "--help"], ["webhooks", "--help"],
                                  ["scenario", "--help"], ["serve", "--help"]])
def test_help_and_version_load_nothing_heavy(args: list[str]) -> None:
    assert probe(*args) == {"code": 0, "heavy": []}


def test_a_control_command_loads_nothing_heavy() -> None:
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, _app):
        assert probe("clock", "show", "--mock-url", url) == {"code": 0, "heavy": []}
        assert probe("state", "--mock-url", url, "--json") == {"code": 0, "heavy": []}


# What a command needs only when it runs: the settings class (a 35-field dataclass), the control client, a socket
RUN_TIME = ("mock_server.settings", "mock_server.harness.control_client", "socket")


@pytest.mark.parametrize("args", [["--help"], ["clock", "--help"], ["scenario", "--help"], ["serve", "--help"]])
def test_help_imports_what_the_commands_run_only_when_they_run(args: list[str]) -> None:
    """``--help`` lists every command with its options, so it imports every command module: those modules import
    only click at their top."""
    assert probe(*args, watched=RUN_TIME) == {"code": 0, "heavy": []}


def test_a_control_command_talks_without_http_client() -> None:
    """A control command's HTTP is a socket and ``harness.http_connection``: ``http.client`` (with ``email`` and
    ``ssl``) is about 20 ms to import, a third of a CLI call's budget."""
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, _app):
        assert probe("clock", "show", "--mock-url", url, watched=("http", "email", "ssl")) == {"code": 0, "heavy": []}


def test_an_unreachable_mock_is_reported_without_loading_anything_heavy() -> None:
    assert probe("clock", "show", "--mock-url", "http://127.0.0.1:9") == {"code": 1, "heavy": []}


def loaded_at_start(selected: str) -> list[str]:
    """The modules a fresh interpreter holds after ``create_app`` whose name ``m`` satisfies ``selected``."""
    code = ("import sys\nfrom mock_server.app import create_app\nfrom mock_server.settings import Settings\n"
            "create_app(Settings(clock_mode='manual'))\n"
            f"print(json.dumps(sorted(m for m in sys.modules if {selected})))")
    done = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_an_app_without_a_scenario_loads_neither_the_scenario_model_nor_yaml() -> None:
    """Start-up builds only what the first request needs: the scenario model and PyYAML load with a scenario."""
    assert loaded_at_start("m.split('.')[0] == 'yaml' or m == 'mock_server.scenarios.model'") == []


def test_start_up_loads_neither_the_partner_api_nor_the_control_plane() -> None:
    """Cold start: the app that answers the health check has imported no pydantic model, no route module of the
    partner API or the control plane, no webhook framing and no template contract; each loads on first use."""
    assert loaded_at_start(
        "m.split('.')[0] in ('pydantic', 'h11', 'jwt') or m in ('mock_server.models', 'mock_server.contracts', "
        "'mock_server.http.investors', 'mock_server.control.state', 'mock_server.domain.admin', "
        "'mock_server.webhooks.chaos')") == []


def test_every_command_resolves_and_version_imports_no_command_module() -> None:
    """The root imports a command's module when the command is used: every name in its table is that module's
    command of the same name, and ``--version`` loads none of the command modules."""
    import click

    from mock_server.cli.root import COMMANDS, main

    with click.Context(main) as ctx:
        assert main.list_commands(ctx) == sorted(COMMANDS)
        assert all(main.get_command(ctx, name) is not None for name in COMMANDS)
    code = ("import sys\nfrom mock_server.cli import main\ntry:\n    main(['--version'], prog_name='zest-mock')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('mock_server.cli.') and m != 'mock_server.cli.root'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
