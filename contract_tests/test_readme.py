"""README and behaviour agree: its pytest example passes as written, and every command it lists exists."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mock_server.cli import main

pytest_plugins = ["pytester"]
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_pytest_example_passes_as_written(pytester: pytest.Pytester) -> None:
    example = README.split("## Use from pytest")[1].split("```python")[1].split("```")[0]
    pytester.makepyfile(test_readme_example=example)
    result = pytester.runpytest_subprocess("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")
    result.assert_outcomes(passed=1)


INVOCATION = re.compile(r"(?:^|[`/]|run: )zest-mock ([a-z][a-z-]*(?: [a-z][a-z-]*)?)", re.M)
COMMANDS = sorted({" ".join(m.split()[:2]) for m in INVOCATION.findall(README)})


def _command_words(words: list[str]) -> list[str]:
    """The words that name a command: a group's word must name one of its subcommands; after a plain command the
    rest are its arguments (``zest-mock token dev-partner``)."""
    command: click.Command = main
    named: list[str] = []
    for word in words:
        if not isinstance(command, click.Group):
            break
        sub = command.commands.get(word)
        assert sub is not None, f"`zest-mock {' '.join(words)}`: {word!r} is not a command of {named or 'zest-mock'}"
        command, named = sub, [*named, word]
    return named


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_in_the_readme_exists(command: str) -> None:
    result = CliRunner().invoke(main, [*_command_words(command.split()), "--help"])
    assert result.exit_code == 0, result.output


def test_the_readme_shows_the_commands_that_matter() -> None:
    assert {"serve", "token", "scenario run", "verify-receiver", "conformance", "clock advance"} <= set(COMMANDS) | {
        c.split()[0] for c in COMMANDS}
