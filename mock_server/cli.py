"""The ``zest-mock`` command: serve the mock, and talk to a running one. Renders results; holds no logic."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx
import uvicorn

from mock_server import __version__
from mock_server.app import create_app
from mock_server.domain import policy
from mock_server.domain.partners import dev_partner_private_key
from mock_server.harness.assertions import fetch_token
from mock_server.harness.control_client import (
    JSON,
    ControlClient,
    ControlError,
    ControlRefused,
    MockUnreachable,
)
from mock_server.harness.junit import CaseResult, write_junit
from mock_server.harness.receiver_check import CLASSNAME, check_receiver
from mock_server.harness.scenarios import (
    EXPECTATION_SUMMARIES,
    ScenarioError,
    format_duration,
    list_scenarios,
    load_scenario,
)
from mock_server.settings import AUDIENCE_PRESETS, CLOCK_MODES, Settings

DEFAULT_URL = "http://localhost:8080"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zest-mock")
def main() -> None:
    """zest-mock: a local, faithful fake of the Zest Partner API, on a simulated clock."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite state file; a restart resumes from it. In memory when absent.")
@click.option("--seed", type=int, help="Seed for ids, secrets and fault decisions, to replay a run exactly.")
@click.option("--clock", "clock_mode", type=click.Choice(CLOCK_MODES), default=None,
              help="Simulated clock: realtime (default), manual (frozen until advanced) or scaled.")
@click.option("--scale", "clock_scale", type=float, help="With --clock scaled: simulated seconds per wall second.")
@click.option("--start", "clock_start", help="Simulated start instant (ISO 8601); default the wall clock.")
@click.option("--audience", help=f"Expected JWT aud: a URL or a preset ({', '.join(AUDIENCE_PRESETS)}).")
@click.option("--public-url", help="URL partners reach the mock at (used in file URLs); default from host/port.")
@click.option("--webhook-url", help="Webhook endpoint of the dev partner.")
@click.option("--webhook-secret", help="Signing secret (whsec_...) of the dev partner.")
@click.option("--admin-policy", help="Simulated admin: 'manual' (default), 'demo' (approve and complete after 60 s "
              "each) or a JSON policy as accepted by PUT /_mock/admin/policy.")
@click.option("--scenario", help="Load a scenario at start: a library name (see `zest-mock scenario list`) or a "
              "YAML file.")
def serve(**options: object) -> None:
    """Serve the Partner API and the /_mock control plane."""
    if isinstance(options.get("audience"), str):
        options["audience"] = AUDIENCE_PRESETS.get(str(options["audience"]), options["audience"])
    try:
        settings = Settings.from_env(**options)
        if settings.admin_policy:
            policy.parse(settings.admin_policy)
        if settings.scenario:
            load_scenario(settings.scenario)
    except ScenarioError as exc:
        raise click.BadParameter("\n".join(exc.errors), param_hint="--scenario") from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc

    click.echo(f"zest-mock {__version__} on {settings.base_url} (clock {settings.clock_mode}, "
               f"state {settings.state_path or 'in memory'}); docs at {settings.base_url}/docs", err=True)
    uvicorn.run(functools.partial(create_app, settings), factory=True, host=settings.host, port=settings.port,
                log_level="warning", timeout_graceful_shutdown=5)


@main.command()
@click.option("--base-url", envvar="ZEST_BASE_URL", default=DEFAULT_URL, show_default=True,
              help="Where the mock (or a Zest environment) listens.")
@click.option("--client-id", envvar="ZEST_CLIENT_ID", default="dev-partner", show_default=True)
@click.option("--private-key", "private_key_file", envvar="ZEST_PRIVATE_KEY_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ed25519 private key (PEM) of the client; default the shipped dev partner key.")
@click.option("--audience", help="JWT aud; default the base URL.")
def token(base_url: str, client_id: str, private_key_file: Path | None, audience: str | None) -> None:
    """Print a bearer token, obtained by the real JWT-bearer exchange."""
    key = private_key_file.read_text() if private_key_file else dev_partner_private_key()
    try:
        click.echo(fetch_token(base_url, client_id, key, audience or base_url.rstrip("/")))
    except httpx.HTTPStatusError as exc:
        click.echo(f"token exchange refused: {exc.response.status_code} {exc.response.text}", err=True)
        sys.exit(1)
    except httpx.TransportError as exc:
        click.echo(f"cannot reach {base_url}: {exc}", err=True)
        sys.exit(1)


# ---- talking to a running mock through its control plane -------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_UNIT_SECONDS = (86400, 3600, 60, 1)


class Duration(click.ParamType):
    """``30s``, ``5m``, ``2h``, ``1d``, ``1h30m`` or plain seconds (``90``), as seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        seconds = float(value) if isinstance(value, int | float) else self._seconds(str(value), param, ctx)
        if not 0 <= seconds < float("inf"):
            self.fail(f"{value!r} is not a duration of zero or more seconds", param, ctx)
        return seconds

    def _seconds(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> float:
        text = value.strip().lower()
        with contextlib.suppress(ValueError):
            return float(text)
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            self.fail(f"{value!r} is not a duration like 30s, 5m, 2h, 1d or 1h30m", param, ctx)
        return sum(float(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if part)


def _control(command: Callable[..., None]) -> Callable[..., None]:
    """The options every control command takes: where the mock is, and whether to print JSON."""
    command = click.option("--json", "as_json", is_flag=True, help="Print the server's JSON instead of lines.")(command)
    return click.option("--mock-url", envvar="ZEST_MOCK_URL", default=DEFAULT_URL, show_default=True,
                        help="Where the running mock listens (env ZEST_MOCK_URL).")(command)


def _run(mock_url: str, as_json: bool, call: Callable[[ControlClient], JSON], render: Callable[[JSON], list[str]],
         ) -> None:
    """Call the mock, then print its answer as lines (or JSON); exit 1 with the reason when it fails."""
    try:
        with ControlClient(mock_url) as client:
            result = call(client)
    except ControlRefused as exc:
        if as_json:
            click.echo(json.dumps({"status": exc.status, **exc.envelope}, indent=2))
        click.echo(f"error: {exc.status} {exc.code}: {exc.detail}" + _error_tail(exc), err=True)
        sys.exit(1)
    except MockUnreachable as exc:
        click.echo(f"error: {exc} (is it running? start it with `zest-mock serve`)", err=True)
        sys.exit(1)
    except ControlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for line in render(result):
        click.echo(line)


def _error_tail(exc: ControlRefused) -> str:
    fields = "".join(f"\n  {e.get('field') or e.get('attribute')}: {e.get('message')}" for e in exc.validation_errors)
    return (f" (errorId {exc.error_id})" if exc.error_id else "") + fields


def _items(result: JSON, empty: str, line: Callable[[JSON], str]) -> list[str]:
    items = result.get("items") or []
    return [line(item) for item in items] if items else [empty]


def _pairs(values: JSON, skip: tuple[str, ...] = ()) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items() if key not in skip and value is not None)


@main.group()
def clock() -> None:
    """Read and advance the mock's simulated clock."""


@clock.command("show")
@_control
def clock_show(mock_url: str, as_json: bool) -> None:
    """Print simulated now, the clock mode and its scale."""
    _run(mock_url, as_json, ControlClient.clock, _clock_lines)


@clock.command("advance")
@click.argument("duration", type=Duration(), required=False)
@click.option("--to", "to", metavar="ISO", help="Advance to this ISO 8601 instant instead of by a duration.")
@_control
def clock_advance(duration: float | None, to: str | None, mock_url: str, as_json: bool) -> None:
    """Advance simulated time by DURATION (30s, 5m, 2h, 1d, 1h30m) or --to an instant, running every due job."""
    if (duration is None) == (to is None):
        raise click.UsageError("give either a DURATION or --to ISO, not both and not neither")
    _run(mock_url, as_json, lambda c: c.advance(duration, to=to), _advance_lines)


def _clock_lines(result: JSON) -> list[str]:
    scale = f" x{result.get('scale')}" if result.get("mode") == "scaled" else ""
    return [f"{result.get('now')} ({result.get('mode')}{scale})"]


def _advance_lines(result: JSON) -> list[str]:
    ran = result.get("ran") or []
    head = f"{result.get('from')} -> {result.get('to')}: ran {result.get('count', len(ran))} job(s)"
    return [head, *(f"  {job.get('dueAt')} {job.get('kind')} {_pairs(job, ('dueAt', 'kind'))}".rstrip()
                    for job in ran)]


@main.group()
def admin() -> None:
    """Play the Zest admin: approve or reject SPV requests, complete subscriptions."""


@admin.command("approve")
@click.argument("slug")
@_control
def admin_approve(slug: str, mock_url: str, as_json: bool) -> None:
    """Approve the pending SPV request SLUG (materialises its SPV)."""
    _run(mock_url, as_json, lambda c: c.approve(slug), _spv_request_lines)


@admin.command("reject")
@click.argument("slug")
@click.option("--reason", required=True, help="Why the request is rejected (sent to the partner).")
@_control
def admin_reject(slug: str, reason: str, mock_url: str, as_json: bool) -> None:
    """Reject the pending SPV request SLUG."""
    _run(mock_url, as_json, lambda c: c.reject(slug, reason), _spv_request_lines)


@admin.command("complete")
@click.argument("subscription_slug")
@_control
def admin_complete(subscription_slug: str, mock_url: str, as_json: bool) -> None:
    """Mark the funded subscription SUBSCRIPTION_SLUG completed."""
    _run(mock_url, as_json, lambda c: c.complete(subscription_slug),
         lambda r: [f"{r.get('subscriptionSlug', subscription_slug)} {r.get('status')}"])


def _spv_request_lines(result: JSON) -> list[str]:
    line = f"{result.get('spvRequestSlug')} {result.get('status')}"
    refs = result.get("materialisedRefs") or {}
    if refs.get("vehicleSlug"):
        line += f" (vehicle {refs['vehicleSlug']})"
    if result.get("rejectionReason"):
        line += f": {result['rejectionReason']}"
    return [line]


@main.group()
def webhooks() -> None:
    """Inspect stored events and delivery attempts; redeliver an event."""


@webhooks.command("list")
@click.option("--client-id", help="Only this partner's events.")
@click.option("--event-type", help="Only events of this type (e.g. spv_request.completed).")
@_control
def webhooks_list(client_id: str | None, event_type: str | None, mock_url: str, as_json: bool) -> None:
    """Stored events, oldest first."""
    _run(mock_url, as_json, lambda c: c.events(client_id, event_type), lambda r: _items(
        r, "no events", lambda e: f"{e.get('occurredAt')} {e.get('eventId')} {e.get('eventType')} {e.get('clientId')}"))


@webhooks.command("deliveries")
@click.option("--client-id", help="Only this partner's attempts.")
@click.option("--event-id", help="Only attempts to deliver this event.")
@_control
def webhooks_deliveries(client_id: str | None, event_id: str | None, mock_url: str, as_json: bool) -> None:
    """Every delivery attempt, oldest first: outcome, status code or error, duration, next attempt."""
    _run(mock_url, as_json, lambda c: c.deliveries(client_id, event_id),
         lambda r: _items(r, "no delivery attempts", _attempt_line))


@webhooks.command("dead")
@click.option("--client-id", help="Only this partner's dead deliveries.")
@_control
def webhooks_dead(client_id: str | None, mock_url: str, as_json: bool) -> None:
    """Deliveries whose every attempt failed."""
    _run(mock_url, as_json, lambda c: c.dead_letter(client_id), lambda r: _items(
        r, "no dead deliveries", lambda d: f"{d.get('createdAt')} {d.get('deliveryId')} {d.get('eventId')} "
                                           f"{d.get('clientId')} after {d.get('attempts')} attempt(s)"))


@webhooks.command("redeliver")
@click.argument("event_id")
@_control
def webhooks_redeliver(event_id: str, mock_url: str, as_json: bool) -> None:
    """Start a fresh delivery chain for EVENT_ID (same eventId and body)."""
    _run(mock_url, as_json, lambda c: c.redeliver(event_id),
         lambda d: [f"{d.get('deliveryId')} queued for {d.get('eventId')} ({d.get('status')})"])


def _attempt_line(a: JSON) -> str:
    result = a.get("statusCode") if a.get("statusCode") is not None else a.get("error")
    line = (f"{a.get('at')} {a.get('eventId')} #{a.get('attempt')} {a.get('outcome')} {result} "
            f"{a.get('durationMs')}ms")
    return line + (f" next {a['nextAttemptAt']}" if a.get("nextAttemptAt") else "")


@main.command("state")
@_control
def state_command(mock_url: str, as_json: bool) -> None:
    """Counts per partner: SPV requests, SPVs, investors, subscriptions, events and deliveries."""
    _run(mock_url, as_json, ControlClient.state, _state_lines)


def _state_lines(result: JSON) -> list[str]:
    clock_line = _clock_lines(result.get("clock") or {})[0]
    lines = [f"clock {clock_line}, seed {result.get('seed')}, pending jobs {result.get('pendingJobs')}, "
             f"journaled requests {result.get('journaledRequests')}"]
    for client_id, partner in (result.get("partners") or {}).items():
        lines.append(f"{client_id}:")
        for name, tally in partner.items():
            breakdown = tally.get("byStatus") or tally.get("byType") or {}
            detail = f" ({', '.join(f'{k} {v}' for k, v in sorted(breakdown.items()))})" if breakdown else ""
            lines.append(f"  {name} {tally.get('count')}{detail}")
    return lines


@main.command("reset")
@click.option("--keep-partners", is_flag=True, help="Keep registered partners (keys, webhook endpoints, tokens).")
@_control
def reset_command(keep_partners: bool, mock_url: str, as_json: bool) -> None:
    """Wipe every resource, event, delivery, job and journal entry."""
    _run(mock_url, as_json, lambda c: c.reset(keep_partners), lambda r: [
        f"reset{' (partners kept)' if r.get('keptPartners') else ''}; partners: {', '.join(r.get('partners', []))}"])


@main.command("requests")
@click.option("--client-id", help="Only this partner's calls.")
@click.option("--operation-id", help="Only calls of this operation (e.g. createSpvRequest).")
@click.option("--limit", type=click.IntRange(1, 10_000), help="How many of the latest calls (server default 100).")
@_control
def requests_command(client_id: str | None, operation_id: str | None, limit: int | None, mock_url: str,
                     as_json: bool) -> None:
    """The journal of partner API calls, oldest first."""
    _run(mock_url, as_json, lambda c: c.requests(client_id, operation_id, limit),
         lambda r: _items(r, "no requests", _request_line))


def _request_line(r: JSON) -> str:
    line = (f"{r.get('at')} {r.get('status')} {r.get('method')} {r.get('path')} {r.get('operationId') or '-'} "
            f"{r.get('clientId') or '-'} {r.get('durationMs')}ms")
    extras = _pairs({"key": r.get("idempotencyKey"), "fault": r.get("fault")})
    return f"{line} {extras}" if extras else line


@main.command("verify-receiver")
@click.argument("url")
@click.option("--secret", envvar="ZEST_WEBHOOK_SECRET", required=True,
              help="The endpoint's signing secret (whsec_...); also from ZEST_WEBHOOK_SECRET.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a JUnit XML report here.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds the receiver has to answer each delivery.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of lines.")
def verify_receiver_command(url: str, secret: str, junit_path: Path | None, timeout_s: float,
                            as_json: bool) -> None:
    """Send a battery of signed, forged, stale and duplicate webhooks to URL and judge each answer."""

    report = check_receiver(url, secret, timeout_s=timeout_s)
    if junit_path is not None:
        write_junit(junit_path, CLASSNAME, report.cases)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for case in report.cases:
            click.echo(f"{case.status} {case.name}" + (f": {case.message}" if case.message else ""))
        click.echo(report.summary)
    sys.exit(0 if report.ok else 1)


# ---- the scenario library ---------------------------------------------------------------------------------------

@main.group()
def scenario() -> None:
    """The scenario library: list it, show one, run your partner code against one."""


@scenario.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON instead of lines.")
def scenario_list(as_json: bool) -> None:
    """Every shipped scenario, with what it proves in one line."""

    try:
        library = list_scenarios()
    except ScenarioError as exc:
        _scenario_errors(exc.errors)
    if as_json:
        click.echo(json.dumps([s.summary() for s in library], indent=2))
        return
    width = max(len(s.name) for s in library)
    for item in library:
        click.echo(f"{item.name:<{width}}  {_first_sentence(item.description)}")


@scenario.command("show")
@click.argument("name_or_file")
@click.option("--json", "as_json", is_flag=True, help="Print the scenario as a JSON document instead of lines.")
def scenario_show(name_or_file: str, as_json: bool) -> None:
    """Explain the scenario NAME (or a scenario FILE): set-up, timeline and expectations."""

    try:
        loaded = load_scenario(name_or_file)
    except ScenarioError as exc:
        _scenario_errors(exc.errors)
    if as_json:
        click.echo(json.dumps(loaded.to_document(), indent=2))
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

    lines = [f"{doc['name']} (seed {doc['seed']}, clock {doc['clock']})", *textwrap.wrap(doc["description"], 100), ""]
    if doc.get("policy"):
        lines.append(f"admin policy: {json.dumps(doc['policy'])}")
    lines += [f"fault: {json.dumps(rule)}" for rule in doc.get("faults", [])]
    if doc.get("webhookChaos"):
        lines.append(f"webhook chaos: {json.dumps(doc['webhookChaos'])}")
    for step in doc.get("timeline", []):
        wait = f"after {step['waitFor']}, " if step.get("waitFor", "none") != "none" else ""
        at = f"at +{format_duration(step['at'])} " if step.get("at") is not None else ""
        extra = _pairs({"reason": step.get("reason"), "emit": step.get("emit")})
        lines.append(f"timeline: {wait}{at}{step['do']} {extra}".rstrip())
    for entry in doc.get("expectations", []):
        name, params = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        lines.append(f"expect {name}{' ' + _pairs(params) if params else ''}: {EXPECTATION_SUMMARIES[name]}")
    return lines


@scenario.command("run")
@click.argument("name_or_file")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JUnit XML report here: one testcase per expectation, plus one for COMMAND's exit.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port for the mock on 127.0.0.1; 0 picks a free one.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=300.0,
              show_default=True, help="Seconds COMMAND may run before it is stopped (and fails).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of lines.")
def scenario_run(name_or_file: str, command: tuple[str, ...], junit_path: Path | None, port: int, timeout_s: float,
                 as_json: bool) -> None:
    """Run COMMAND against a mock with scenario NAME (or FILE) loaded, then judge its expectations.

    \b
      zest-mock scenario run happy_path --junit report.xml -- python -m pytest tests/zest
    COMMAND gets ZEST_BASE_URL, ZEST_MOCK_URL, ZEST_CLIENT_ID, ZEST_PRIVATE_KEY_FILE, ZEST_WEBHOOK_SECRET,
    ZEST_AUDIENCE and ZEST_SCENARIO. Exits 1 if COMMAND failed or any expectation failed.
    """
    from mock_server.harness.runner import run_scenario

    try:
        report = run_scenario(name_or_file, list(command), port=port, junit=junit_path, timeout=timeout_s)
    except ScenarioError as exc:
        _scenario_errors(exc.errors)
    except OSError as exc:
        raise click.ClickException(f"cannot serve the mock on port {port}: {exc}") from exc
    except ControlError as exc:
        raise click.ClickException(f"the mock failed during the run: {exc}") from exc
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in _run_lines(report.cases, report.timeline):
            click.echo(line)
        click.echo(report.summary + (f"; JUnit report in {junit_path}" if junit_path else ""))
    sys.exit(0 if report.ok else 1)


def _run_lines(cases: list[CaseResult], timeline: list[str]) -> list[str]:
    lines: list[str] = []
    for case in cases:
        lines.append(f"{case.status} {case.name}" + (f": {case.message}" if case.message else ""))
        if case.failed and case.evidence:
            lines += [f"    {line}" for line in case.evidence.splitlines()]
    return [*lines, *(["timeline:"] + [f"  {step}" for step in timeline] if timeline else [])]


# ---- conformance: any server against the published contract ------------------------------------------------------

@main.command("conformance")
@click.option("--base-url", envvar="ZEST_BASE_URL", default=DEFAULT_URL, show_default=True,
              help="The server to judge: a running mock or a Zest environment (env ZEST_BASE_URL).")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="OpenAPI document to judge against (JSON or YAML), e.g. the published zest-openapi.json; "
                   "default the mock's own document. The documented exceptions are applied either way.")
@click.option("--token", envvar="ZEST_TOKEN", help="Bearer token to call with (env ZEST_TOKEN).")
@click.option("--client-id", envvar="ZEST_CLIENT_ID", help="Mint a token by the JWT-bearer exchange as this client.")
@click.option("--private-key", "private_key_file", envvar="ZEST_PRIVATE_KEY_FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ed25519 private key (PEM) of --client-id.")
@click.option("--audience", help="JWT aud of the minted assertion; default the base URL.")
@click.option("--allow-writes", is_flag=True,
              help="Also cancel and upload against a server that is not a zest-mock (reads and creates only "
                   "otherwise).")
@click.option("--max-examples", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Fuzzed cases per operation (examples and coverage cases come on top; requests are capped).")
@click.option("--seed", type=int, default=20260507, show_default=True, help="Seed: the same seed, the same run.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
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
    from mock_server.harness import conformance

    spec = _spec_document(spec_file) if spec_file else None
    if token:  # a token wins over client credentials (which may come from the environment)
        client_id = private_key_file = None
    key = private_key_file.read_text() if private_key_file else None
    echo: Callable[[str], None] = (lambda line: None) if as_json else click.echo
    try:
        report = conformance.run_conformance(
            base_url, spec=spec, spec_label=str(spec_file) if spec_file else None, token=token, client_id=client_id,
            private_key_pem=key, audience=audience, allow_writes=allow_writes, max_examples=max_examples, seed=seed,
            on_exceptions=lambda applied: _exception_lines(applied, echo),
            on_result=lambda case: echo(f"{case.status} {case.name}" + (f": {case.message}" if case.message else "")),
        )
    except conformance.ConformanceError as exc:
        raise click.ClickException(str(exc)) from exc
    if junit_path is not None:
        write_junit(junit_path, conformance.CLASSNAME, report.all_cases)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
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
