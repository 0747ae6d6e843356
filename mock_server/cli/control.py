"""Commands that drive a running mock through its control plane: clock, admin, webhooks, state, reset, requests,
dev-credentials.

The control client (and its socket) is imported when a command calls the mock, not when ``--help`` lists it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mock_server.cli.common import DEFAULT_URL, echo_json
from mock_server.durations import parse_duration

if TYPE_CHECKING:
    from mock_server.harness.control_client import JSON, ControlClient, ControlRefused


class Duration(click.ParamType):
    """``30s``, ``5m``, ``2h``, ``1d``, ``1h30m`` or plain seconds (``90``), as seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _control(command: Callable[..., None]) -> Callable[..., None]:
    """The options every control command takes: where the mock is, and whether to print JSON."""
    command = click.option("--json", "as_json", is_flag=True, help="Print the server's JSON instead of lines.")(command)
    return click.option("--mock-url", envvar="ZEST_MOCK_URL", default=DEFAULT_URL, show_default=True,
                        help="Where the running mock listens (env ZEST_MOCK_URL).")(command)


def _run(mock_url: str, as_json: bool, call: Callable[[ControlClient], JSON], render: Callable[[JSON], list[str]],
         ) -> None:
    """Call the mock, then print its answer as lines (or JSON); exit 1 with the reason when it fails."""
    from mock_server.harness.control_client import ControlClient, ControlError, ControlRefused, MockUnreachable

    try:
        with ControlClient(mock_url) as client:
            result = call(client)
    except ControlRefused as exc:
        if as_json:
            echo_json({"status": exc.status, **exc.envelope})
        click.echo(f"error: {exc.status} {exc.code}: {exc.detail}" + _error_tail(exc), err=True)
        sys.exit(1)
    except MockUnreachable as exc:
        click.echo(f"error: {exc} (is it running? start it with `zest-mock serve`)", err=True)
        sys.exit(1)
    except ControlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        echo_json(result)
        return
    for line in render(result):
        click.echo(line)


def _error_tail(exc: ControlRefused) -> str:
    fields = "".join(f"\n  {e.get('field') or e.get('attribute')}: {e.get('message')}" for e in exc.validation_errors)
    return (f" (errorId {exc.error_id})" if exc.error_id else "") + fields


def _items(result: JSON, empty: str, line: Callable[[JSON], str]) -> list[str]:
    items = result.get("items") or []
    return [line(item) for item in items] if items else [empty]


def pairs(values: JSON, skip: tuple[str, ...] = ()) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items() if key not in skip and value is not None)


@click.group()
def clock() -> None:
    """Read and advance the mock's simulated clock."""


@clock.command("show")
@_control
def clock_show(mock_url: str, as_json: bool) -> None:
    """Print simulated now, the clock mode and its scale."""
    _run(mock_url, as_json, lambda c: c.clock(), _clock_lines)


@clock.command("advance", context_settings={"ignore_unknown_options": True})  # so -5m reaches Duration
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
    return [head, *(f"  {job.get('dueAt')} {job.get('kind')} {pairs(job, ('dueAt', 'kind'))}".rstrip()
                    for job in ran)]


@click.group()
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


@click.group()
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


@webhooks.command("endpoint")
@click.argument("url")
@click.option("--secret", help="A new signing secret (whsec_...); default: keep the current one.")
@click.option("--client-id", help="The partner whose endpoint this is (default dev-partner).")
@_control
def webhooks_endpoint(url: str, secret: str | None, client_id: str | None, mock_url: str, as_json: bool) -> None:
    """Deliver the partner's webhooks to URL from now on; deliveries waiting for an endpoint resume."""
    _run(mock_url, as_json, lambda c: c.set_webhook_endpoint(url, client_id=client_id, secret=secret),
         lambda r: [f"{r.get('clientId')} webhooks go to {r.get('url')} (secret {r.get('secret')}); "
                    f"{r.get('resumedDeliveries', 0)} waiting deliveries resumed"])


@webhooks.command("deliveries")
@click.option("--client-id", help="Only this partner's attempts.")
@click.option("--event-id", help="Only attempts to deliver this event.")
@_control
def webhooks_deliveries(client_id: str | None, event_id: str | None, mock_url: str, as_json: bool) -> None:
    """Every delivery attempt, oldest first: outcome, status code or error, duration, next attempt."""

    def call(c: ControlClient) -> JSON:
        result = c.deliveries(client_id, event_id)
        if not as_json and not result.get("items"):  # say why nothing was attempted
            result = {**result, "noEndpoint": [p.get("clientId") for p in c.partners().get("items", [])
                                               if not p.get("webhookUrl") and client_id in (None, p.get("clientId"))]}
        return result

    _run(mock_url, as_json, call, _deliveries_lines)


def _deliveries_lines(result: JSON) -> list[str]:
    if result.get("items"):
        return [_attempt_line(a) for a in result["items"]]
    return ["no delivery attempts", *(f"{client} has no webhook endpoint: its events are kept until one is set "
                                      "(zest-mock webhooks endpoint URL)" for client in result.get("noEndpoint", []))]


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


@click.command("dev-credentials")
@click.option("--env", "as_env", is_flag=True, help="Print ZEST_*=value lines (for $GITHUB_ENV or `export`).")
@_control
def dev_credentials_command(as_env: bool, mock_url: str, as_json: bool) -> None:
    """The dev partner's private key file, client id, JWT audience and webhook secret for the running mock."""
    from mock_server.dev_partner import dev_partner_private_key_file

    key_file = str(dev_partner_private_key_file())
    _run(mock_url, as_json, lambda c: {**c.dev_credentials(), "privateKeyFile": key_file},
         (lambda r: _credentials_env(r, mock_url)) if as_env else _credentials_lines)


def _credentials_lines(r: JSON) -> list[str]:
    endpoint = r.get("webhookUrl") or "none (set one with: zest-mock webhooks endpoint URL)"
    return [f"private key     {r.get('privateKeyFile')}", f"client id       {r.get('clientId')}",
            f"audience        {r.get('audience')}", f"webhook secret  {r.get('webhookSecret')}",
            f"webhook url     {endpoint}"]


def _credentials_env(r: JSON, mock_url: str) -> list[str]:
    url = mock_url.rstrip("/")
    return [f"ZEST_BASE_URL={url}", f"ZEST_MOCK_URL={url}", f"ZEST_CLIENT_ID={r.get('clientId')}",
            f"ZEST_PRIVATE_KEY_FILE={r.get('privateKeyFile')}", f"ZEST_WEBHOOK_SECRET={r.get('webhookSecret')}",
            f"ZEST_AUDIENCE={r.get('audience')}"]


@click.command("state")
@_control
def state_command(mock_url: str, as_json: bool) -> None:
    """Counts per partner: SPV requests, SPVs, investors, subscriptions, events and deliveries."""
    _run(mock_url, as_json, lambda c: c.state(), _state_lines)


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


@click.command("reset")
@click.option("--keep-partners", is_flag=True, help="Keep registered partners (keys, webhook endpoints, tokens).")
@_control
def reset_command(keep_partners: bool, mock_url: str, as_json: bool) -> None:
    """Wipe every resource, event, delivery, job and journal entry."""
    _run(mock_url, as_json, lambda c: c.reset(keep_partners), lambda r: [
        f"reset{' (partners kept)' if r.get('keptPartners') else ''}; partners: {', '.join(r.get('partners', []))}"])


@click.command("requests")
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
    extras = pairs({"key": r.get("idempotencyKey"), "fault": r.get("fault")})
    return f"{line} {extras}" if extras else line
