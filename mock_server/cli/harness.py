"""The harness commands a partner's CI runs: scenarios, the webhook receiver check, conformance.

What a command runs (the runner, the receiver check, conformance, the control client) is imported inside it."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from mock_server.cli.common import DEFAULT_URL, FilePath, echo_json
from mock_server.cli.control import pairs
from mock_server.presets import resolve_audience

if TYPE_CHECKING:
    from pathlib import Path

    from mock_server.harness.control_client import JSON
    from mock_server.harness.junit import CaseResult


@click.command("verify-receiver")
@click.argument("url")
@click.option("--secret", envvar="ZEST_WEBHOOK_SECRET", required=True,
              help="The endpoint's signing secret (whsec_...); also from ZEST_WEBHOOK_SECRET.")
@click.option("--junit", "junit_path", type=FilePath(dir_okay=False),
              help="Also write a JUnit XML report here.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds the receiver has to answer each delivery.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of lines.")
def verify_receiver_command(url: str, secret: str, junit_path: Path | None, timeout_s: float,
                            as_json: bool) -> None:
    """Send a battery of signed, forged, stale and duplicate webhooks to URL and judge each answer."""
    from mock_server.harness.junit import write_junit
    from mock_server.harness.receiver_check import CLASSNAME, check_receiver

    report = check_receiver(url, secret, timeout_s=timeout_s)
    if junit_path is not None:
        write_junit(junit_path, CLASSNAME, report.cases)
    if as_json:
        echo_json(report.to_dict())
    else:
        for case in report.cases:
            click.echo(f"{case.status} {case.name}" + (f": {case.message}" if case.message else ""))
        click.echo(report.summary)
    sys.exit(0 if report.ok else 1)


# ---- the scenario library ---------------------------------------------------------------------------------------

@click.group()
def scenario() -> None:
    """The scenario library: list it, show one, run your partner code against one."""


@scenario.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON instead of lines.")
def scenario_list(as_json: bool) -> None:
    """Every shipped scenario, with what it proves in one line."""
    from mock_server.scenarios.model import ScenarioError, list_scenarios

    try:
        library = list_scenarios()
    except ScenarioError as exc:
        _scenario_errors(exc.errors)
    if as_json:
        echo_json([s.summary() for s in library])
        return
    width = max(len(s.name) for s in library)
    for item in library:
        click.echo(f"{item.name:<{width}}  {_first_sentence(item.description)}")


@scenario.command("show")
@click.argument("name_or_file")
@click.option("--json", "as_json", is_flag=True, help="Print the scenario as a JSON document instead of lines.")
def scenario_show(name_or_file: str, as_json: bool) -> None:
    """Explain the scenario NAME (or a scenario FILE): set-up, timeline and expectations."""
    from mock_server.scenarios.model import ScenarioError, load_scenario

    try:
        loaded = load_scenario(name_or_file)
    except ScenarioError as exc:
        _scenario_errors(exc.errors)
    if as_json:
        echo_json(loaded.to_document())
        return
    for line in _scenario_lines(loaded.to_document()):
        click.echo(line)


def _scenario_errors(errors: list[str]) -> NoReturn:
    for line in errors:
        click.echo(line, err=True)
    sys.exit(1)


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


def _scenario_lines(doc: JSON) -> list[str]:
    import json

    from mock_server.scenarios.model import EXPECTATION_SUMMARIES, format_duration

    lines = [f"{doc['name']} (seed {doc['seed']}, clock {doc['clock']})", *textwrap.wrap(doc["description"], 100), ""]
    if doc.get("policy"):
        lines.append(f"admin policy: {json.dumps(doc['policy'])}")
    lines += [f"fault: {json.dumps(rule)}" for rule in doc.get("faults", [])]
    if doc.get("webhookChaos"):
        lines.append(f"webhook chaos: {json.dumps(doc['webhookChaos'])}")
    for step in doc.get("timeline", []):
        wait = f"after {step['waitFor']}, " if step.get("waitFor", "none") != "none" else ""
        at = f"at +{format_duration(step['at'])} " if step.get("at") is not None else ""
        extra = pairs({"reason": step.get("reason"), "emit": step.get("emit")})
        lines.append(f"timeline: {wait}{at}{step['do']} {extra}".rstrip())
    for entry in doc.get("expectations", []):
        name, params = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        lines.append(f"expect {name}{' ' + pairs(params) if params else ''}: {EXPECTATION_SUMMARIES[name]}")
    return lines


@scenario.command("run")
@click.argument("name_or_file")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--junit", "junit_path", type=FilePath(dir_okay=False),
              help="Write a JUnit XML report here: one testcase per expectation, plus one for COMMAND's exit.")
@click.option("--html", "html_path", type=FilePath(dir_okay=False),
              help="Write a self-contained HTML report here: a sequence diagram of the run with the verdicts.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port for the mock on 127.0.0.1; 0 picks a free one.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=300.0,
              show_default=True, help="Seconds COMMAND may run before it is stopped (and fails).")
@click.option("--webhook-url", help="Your webhook receiver's URL: registered for the run, so COMMAND need not call "
                                     "PUT /_mock/webhooks/endpoint itself.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of lines.")
def scenario_run(name_or_file: str, command: tuple[str, ...], junit_path: Path | None, html_path: Path | None,
                 port: int, timeout_s: float, webhook_url: str | None, as_json: bool) -> None:
    """Run COMMAND against a mock with scenario NAME (or FILE) loaded, then judge its expectations.

    \b
      zest-mock scenario run happy_path --junit report.xml -- python -m pytest tests/zest
    COMMAND gets ZEST_BASE_URL, ZEST_MOCK_URL, ZEST_CLIENT_ID, ZEST_PRIVATE_KEY_FILE, ZEST_WEBHOOK_SECRET,
    ZEST_AUDIENCE and ZEST_SCENARIO. Exits 1 if COMMAND failed (or made no API call) or any expectation failed;
    an expectation the run gave nothing to judge is reported as not exercised (JUnit skipped).
    """
    from mock_server.harness.control_client import ControlError
    from mock_server.harness.report_html import write_html
    from mock_server.harness.runner import run_scenario
    from mock_server.scenarios.model import ScenarioError

    try:
        report = run_scenario(name_or_file, list(command), port=port, junit=junit_path, timeout=timeout_s,
                              webhook_url=webhook_url)
    except ScenarioError as exc:
        _scenario_errors(exc.errors)
    except OSError as exc:
        raise click.ClickException(f"cannot serve the mock on port {port}: {exc}") from exc
    except ControlError as exc:
        raise click.ClickException(f"the mock failed during the run: {exc}") from exc
    if html_path is not None and report.evidence is not None:
        write_html(html_path, f"zest-mock scenario {report.scenario}", report.cases, report.evidence,
                   seed=report.seed, command=report.command, timeline=report.timeline)
    if as_json:
        echo_json(report.to_dict())
    else:
        for line in _run_lines(report.cases, report.timeline):
            click.echo(line)
        click.echo(report.summary + (f"; JUnit report in {junit_path}" if junit_path else "")
                   + (f"; HTML report in {html_path}" if html_path else ""))
    sys.exit(0 if report.ok else 1)


def _run_lines(cases: list[CaseResult], timeline: list[str]) -> list[str]:
    lines: list[str] = []
    for case in cases:
        lines.append(f"{case.status} {case.name}" + (f": {case.message}" if case.message else ""))
        if case.failed and case.evidence:
            lines += [f"    {line}" for line in case.evidence.splitlines()]
    return [*lines, *(["timeline:"] + [f"  {step}" for step in timeline] if timeline else [])]


# ---- conformance: any server against the published contract ------------------------------------------------------

@click.command("conformance")
@click.option("--base-url", envvar="ZEST_BASE_URL", default=DEFAULT_URL, show_default=True,
              help="The server to judge: a running mock or a Zest environment (env ZEST_BASE_URL).")
@click.option("--spec", "spec_file", type=FilePath(exists=True, dir_okay=False),
              help="OpenAPI document to judge against (JSON or YAML), e.g. the published zest-openapi.json; "
                   "default the mock's own document. The documented exceptions are applied either way.")
@click.option("--token", envvar="ZEST_TOKEN", help="Bearer token to call with (env ZEST_TOKEN).")
@click.option("--client-id", envvar="ZEST_CLIENT_ID", help="Mint a token by the JWT-bearer exchange as this client.")
@click.option("--private-key", "private_key_file", envvar="ZEST_PRIVATE_KEY_FILE",
              type=FilePath(exists=True, dir_okay=False),
              help="Ed25519 private key (PEM) of --client-id.")
@click.option("--audience", help="JWT aud of the minted assertion: a URL or a preset (sandbox, production); default "
              "the base URL.")
@click.option("--allow-writes", is_flag=True,
              help="Also cancel and upload against a server that is not a zest-mock (reads and creates only "
                   "otherwise).")
@click.option("--max-examples", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Fuzzed cases per operation (examples and coverage cases come on top; requests are capped).")
@click.option("--seed", type=int, default=20260507, show_default=True, help="Seed: the same seed, the same run.")
@click.option("--junit", "junit_path", type=FilePath(dir_okay=False),
              help="Write a JUnit XML report: one testcase per operation, one per documented exception.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of lines.")
def conformance_command(base_url: str, spec_file: Path | None, token: str | None, client_id: str | None,
                        private_key_file: Path | None, audience: str | None, allow_writes: bool, max_examples: int,
                        seed: int, junit_path: Path | None, as_json: bool) -> None:
    """Judge a running server (the mock, or the Zest sandbox) against the contract, with schemathesis.

    \b
      zest-mock conformance --base-url http://localhost:8080 --junit conformance.xml
      zest-mock conformance --base-url https://sandbox.api.zestequity.com --spec zest-openapi.json \\
          --client-id acme --private-key ed25519-private.pem
    Prints the documented exceptions in effect, one line per operation, and the summary; exits 1 on any failure.
    Against a server that is not a zest-mock only reads and creates are sent unless --allow-writes.
    """
    from mock_server.harness import conformance  # imported here: it needs the optional schemathesis
    from mock_server.harness.junit import write_junit

    spec = _spec_document(spec_file) if spec_file else None
    if token:  # a token wins over client credentials (which may come from the environment)
        client_id = private_key_file = None
    key = private_key_file.read_text() if private_key_file else None
    echo: Callable[[str], None] = (lambda line: None) if as_json else click.echo
    try:
        report = conformance.run_conformance(
            base_url, spec=spec, spec_label=str(spec_file) if spec_file else None, token=token, client_id=client_id,
            private_key_pem=key, audience=audience and resolve_audience(audience), allow_writes=allow_writes,
            max_examples=max_examples, seed=seed,
            on_exceptions=lambda applied: _exception_lines(applied, echo),
            on_result=lambda case: echo(f"{case.status} {case.name}" + (f": {case.message}" if case.message else "")),
        )
    except conformance.ConformanceError as exc:
        raise click.ClickException(str(exc)) from exc
    if junit_path is not None:
        write_junit(junit_path, conformance.CLASSNAME, report.all_cases)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.summary + (f"; JUnit report in {junit_path}" if junit_path else ""))
    sys.exit(0 if report.ok else 1)


def _spec_document(path: Path) -> dict[str, Any]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path} is not JSON or YAML: {exc}", param_hint="--spec") from exc
    if not isinstance(document, dict) or "paths" not in document:
        raise click.BadParameter(f"{path} is not an OpenAPI document (no paths)", param_hint="--spec")
    return document


def _exception_lines(applied: list[Any], echo: Callable[[str], None]) -> None:
    echo(f"documented exceptions in effect ({len(applied)}; the mock follows the docs where the published "
         "document disagrees):")
    for item in applied:
        echo(f"  {item.summary} [{_shorten(item.changes_text, 100)}]")


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
