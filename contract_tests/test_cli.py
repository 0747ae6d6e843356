"""The ``zest-mock`` control commands against a live mock, their errors and exit codes, and the ControlClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result
from support import DEV, PDF, PNG, START, approved_spv, create_spv_request, live_server, settings, subscription

from mock_server.app import create_app
from mock_server.cli import main
from mock_server.cli.control import Duration
from mock_server.dev_partner import dev_partner_private_key
from mock_server.harness.control_client import ControlClient, ControlError, ControlRefused, MockUnreachable

FUNDING = {"amount": "50000.00", "currency": "USD", "wireReference": "ACME-WIRE-1"}


class Mock:
    """A live mock: its URL, a plain HTTP client on it, and the CLI pointed at it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)
        token = self.http.post("/_mock/tokens", json={"clientId": DEV}).json()["accessToken"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--mock-url", self.url])

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.exit_code == 0, (result.output, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def mock() -> Iterator[Mock]:
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, _app):
        live = Mock(url)
        yield live
        live.http.close()


# ---- clock ----------------------------------------------------------------------------------------------------------

def test_clock_show(mock: Mock) -> None:
    assert mock.ok("clock", "show") == f"{START} (manual)\n"
    assert mock.json("clock", "show") == {"now": START, "mode": "manual", "scale": 1.0}


def test_clock_advance_by_a_duration_and_to_an_instant(mock: Mock) -> None:
    assert mock.ok("clock", "advance", "2h").startswith(f"{START} -> 2026-05-07T14:00:00.000Z: ran 0 job(s)")
    result = mock.json("clock", "advance", "1h30m")
    assert (result["from"], result["to"], result["count"]) == ("2026-05-07T14:00:00.000Z",
                                                               "2026-05-07T15:30:00.000Z", 0)
    assert "-> 2026-05-08T00:00:00.000Z" in mock.ok("clock", "advance", "--to", "2026-05-08T00:00:00Z")
    assert mock.json("clock", "show")["now"] == "2026-05-08T00:00:00.000Z"


def test_clock_advance_lists_the_jobs_it_ran(mock: Mock) -> None:
    mock.http.put("/_mock/admin/policy", json={"spvReview": {"decision": "approve", "after": 600}})
    slug = create_spv_request(mock.http, mock.headers).json()["spvRequestSlug"]
    lines = mock.ok("clock", "advance", "10m").splitlines()
    assert any(line.startswith("  2026-05-07T12:10:00.000Z admin_review") for line in lines[1:]), lines
    assert mock.http.get(f"/v1/spv-requests/{slug}", headers=mock.headers).json()["status"] == "approved"


@pytest.mark.parametrize("args", [["clock", "advance"], ["clock", "advance", "2h", "--to", START],
                                  ["clock", "advance", "2x"], ["clock", "advance", "-5m"]])
def test_clock_advance_usage_errors_exit_2(mock: Mock, args: list[str]) -> None:
    result = mock.cli(*args)
    assert result.exit_code == 2 and "Error" in result.stderr


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1d2h3m4s", 93784), ("90", 90),
    ("0", 0), ("1.5h", 5400), ("0.5s", 0.5), ("2H", 7200),
])
def test_durations(text: str, seconds: float) -> None:
    assert Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["", "h", "2x", "1m2h", "-1s", "nan", "inf", "1 h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Duration().convert(text, None, None)


# ---- admin ----------------------------------------------------------------------------------------------------------

def test_admin_approve_and_reject(mock: Mock) -> None:
    first = create_spv_request(mock.http, mock.headers).json()["spvRequestSlug"]
    out = mock.ok("admin", "approve", first)
    assert out.startswith(f"{first} approved (vehicle veh_")
    second = create_spv_request(mock.http, mock.headers).json()["spvRequestSlug"]
    assert mock.ok("admin", "reject", second, "--reason", "Out of scope") == f"{second} rejected: Out of scope\n"
    assert mock.http.get(f"/v1/spv-requests/{second}", headers=mock.headers).json()["status"] == "rejected"


def test_admin_complete(mock: Mock) -> None:
    vehicle, person, slug = subscription(mock.http, mock.headers)
    refused = mock.cli("admin", "complete", slug)
    assert refused.exit_code == 1 and "409 conflict" in refused.stderr and "funding receipt" in refused.stderr
    base = f"/v1/spvs/{vehicle}/subscription/{person}"
    signed = mock.http.post(f"{base}/forms", headers=mock.headers, files={"file": ("form.pdf", PDF, "application/pdf")})
    assert signed.status_code == 201, signed.text
    uploaded = mock.http.post(f"{base}/fundings", headers=mock.headers,
                              files={"file": ("receipt.png", PNG, "image/png")}, data=FUNDING)
    assert uploaded.status_code == 201, uploaded.text
    assert mock.ok("admin", "complete", slug) == f"{slug} completed\n"


def test_a_refusal_exits_1_with_the_envelope_detail(mock: Mock) -> None:
    result = mock.cli("admin", "approve", "svr_nope")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: 404 not_found: ") and "svr_nope" in result.stderr
    assert "errorId" in result.stderr
    as_json = mock.cli("admin", "approve", "svr_nope", "--json")
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["status"] == 404 and body["code"] == "not_found" and body["errorId"]


def test_validation_errors_are_listed(mock: Mock) -> None:
    slug = create_spv_request(mock.http, mock.headers).json()["spvRequestSlug"]
    result = mock.cli("admin", "reject", slug, "--reason", "")
    assert result.exit_code == 1 and "400 validation_error" in result.stderr and "\n  reason: " in result.stderr


# ---- webhooks -------------------------------------------------------------------------------------------------------

def test_webhooks_list_deliveries_dead_and_redeliver(mock: Mock) -> None:
    assert mock.ok("webhooks", "list") == "no events\n"
    assert mock.ok("webhooks", "dead") == "no dead deliveries\n"
    mock.http.put("/_mock/webhooks/endpoint", json={"url": "http://127.0.0.1:9/unreachable"})
    assert create_spv_request(mock.http, mock.headers).status_code == 201
    mock.ok("clock", "advance", "1d")
    (event,) = mock.json("webhooks", "list")["items"]
    assert mock.ok("webhooks", "list", "--event-type", "spv_request.created") == (
        f"{START} {event['eventId']} spv_request.created {DEV}\n")
    assert mock.ok("webhooks", "list", "--event-type", "spv_request.rejected") == "no events\n"
    attempts = mock.ok("webhooks", "deliveries", "--event-id", event["eventId"]).splitlines()
    assert len(attempts) == 6 and all(f"{event['eventId']} #" in line and " failed " in line for line in attempts)
    assert attempts[0].startswith(f"{START} ") and " next " in attempts[0] and " next " not in attempts[-1]
    (dead,) = mock.ok("webhooks", "dead", "--client-id", DEV).splitlines()
    assert event["eventId"] in dead and dead.endswith("after 6 attempt(s)")
    queued = mock.ok("webhooks", "redeliver", event["eventId"])
    assert queued.endswith(f"queued for {event['eventId']} (pending)\n")


# ---- state, reset, requests -----------------------------------------------------------------------------------------

def test_state_lines_and_json(mock: Mock) -> None:
    approved_spv(mock.http, mock.headers)
    create_spv_request(mock.http, mock.headers)
    mock.ok("clock", "advance", "0s")
    lines = mock.ok("state").splitlines()
    assert lines[0] == f"clock {START} (manual), seed 1, pending jobs 0, journaled requests 2"
    assert lines[1] == f"{DEV}:"
    assert "  spvRequests 2 (approved 1, pending-review 1)" in lines
    assert "  events 3 (spv_request.completed 1, spv_request.created 2)" in lines
    assert "  deliveries 3 (awaiting_endpoint 3)" in lines
    assert mock.json("state")["partners"][DEV]["spvs"]["count"] == 1


def test_reset_with_and_without_partners(mock: Mock) -> None:
    mock.http.post("/_mock/partners", json={"clientId": "beta", "tenantSlug": "b"})
    create_spv_request(mock.http, mock.headers)
    assert mock.ok("reset", "--keep-partners") == f"reset (partners kept); partners: beta, {DEV}\n"
    assert mock.json("state")["partners"][DEV]["spvRequests"]["count"] == 0
    assert mock.ok("reset") == f"reset; partners: {DEV}\n"
    assert mock.json("reset") == {"keptPartners": False, "partners": [DEV]}


def test_requests_lists_the_journal(mock: Mock) -> None:
    create_spv_request(mock.http, mock.headers, key="key-1")
    mock.http.get("/v1/spv-requests")
    lines = mock.ok("requests").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{START} 201 POST /v1/spv-requests createSpvRequest {DEV} ")
    assert lines[0].endswith("ms key=key-1")
    assert lines[1].startswith(f"{START} 401 GET /v1/spv-requests listSpvRequests - ")
    assert mock.ok("requests", "--operation-id", "listSpvRequests", "--limit", "1").count("\n") == 1
    assert mock.ok("requests", "--client-id", "nobody") == "no requests\n"
    assert [e["status"] for e in mock.json("requests", "--client-id", DEV)["items"]] == [201]


def test_the_url_comes_from_the_environment(mock: Mock) -> None:
    result = CliRunner(env={"ZEST_MOCK_URL": mock.url}).invoke(main, ["clock", "show"])
    assert result.exit_code == 0 and result.stdout.startswith(START)


# ---- without a mock -------------------------------------------------------------------------------------------------

def test_an_unreachable_mock_gives_a_clear_message() -> None:
    result = CliRunner().invoke(main, ["state", "--mock-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: cannot reach the mock at http://127.0.0.1:9") and "zest-mock serve" in (
        result.stderr)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the root imports a command's module on lookup
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_command_has_help() -> None:
    commands = list(_commands(main))
    assert {("clock", "show"), ("clock", "advance"), ("admin", "approve"), ("admin", "reject"), ("admin", "complete"),
            ("webhooks", "list"), ("webhooks", "deliveries"), ("webhooks", "dead"), ("webhooks", "redeliver"),
            ("state",), ("reset",), ("requests",)} <= set(commands)
    for path in [(), *commands]:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and result.stdout.startswith("Usage: "), path


# ---- ControlClient on a mock transport ------------------------------------------------------------------------------

def recording(answer: httpx.Response) -> tuple[ControlClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return ControlClient("http://mock.test/", transport=httpx.MockTransport(handler)), seen


@pytest.mark.parametrize(("call", "method", "path", "body"), [
    (lambda c: c.advance(7200), "POST", "/_mock/clock/advance", {"seconds": 7200}),
    (lambda c: c.advance(to=START), "POST", "/_mock/clock/advance", {"to": START}),
    (lambda c: c.set_clock("scaled", 60), "PUT", "/_mock/clock", {"mode": "scaled", "scale": 60}),
    (lambda c: c.reject("svr a/b", "why"), "POST", "/_mock/admin/spv-requests/svr%20a%2Fb/reject", {"reason": "why"}),
    (lambda c: c.complete("sub_1"), "POST", "/_mock/admin/subscriptions/sub_1/complete", None),
    (lambda c: c.set_webhook_endpoint("http://h", client_id="beta"), "PUT", "/_mock/webhooks/endpoint",
     {"url": "http://h", "clientId": "beta"}),
    (lambda c: c.redeliver("wde_1"), "POST", "/_mock/webhooks/events/wde_1/redeliver", None),
    (lambda c: c.reset(keep_partners=True), "POST", "/_mock/reset", {"keepPartners": True}),
    (lambda c: c.seed(7), "POST", "/_mock/seed", {"seed": 7}),
    (lambda c: c.register_partner("beta", "b", provisioned=False), "POST", "/_mock/partners",
     {"clientId": "beta", "tenantSlug": "b", "provisioned": False}),
    (lambda c: c.token("beta"), "POST", "/_mock/tokens", {"clientId": "beta"}),
])
def test_the_client_sends_what_the_endpoint_expects(call: Any, method: str, path: str, body: Any) -> None:
    client, seen = recording(httpx.Response(200, json={"ok": True}))
    with client:
        assert call(client) == {"ok": True}
    (request,) = seen
    assert (request.method, request.url.raw_path.decode()) == (method, path)
    assert (json.loads(request.content) if request.content else None) == body


def test_the_client_sends_only_the_filters_given() -> None:
    client, seen = recording(httpx.Response(200, json={"items": []}))
    client.requests(operation_id="createSpvRequest", limit=5)
    client.events()
    client.deliveries(event_id="wde_1")
    assert [str(r.url) for r in seen] == [
        "http://mock.test/_mock/requests?operationId=createSpvRequest&limit=5", "http://mock.test/_mock/webhooks/events",
        "http://mock.test/_mock/webhooks/deliveries?eventId=wde_1"]


def test_a_refusal_carries_the_envelope() -> None:
    envelope = {"code": "validation_error", "detail": "1 attribute failed validation", "errorId": "e-1",
                "validationErrors": [{"field": "seed", "code": "required", "message": "Field required"}]}
    client, _ = recording(httpx.Response(400, json=envelope))
    with pytest.raises(ControlRefused) as refused:
        client.seed(1)
    error = refused.value
    assert (error.status, error.code, error.detail, error.error_id) == (400, "validation_error", envelope["detail"],
                                                                        "e-1")
    assert error.validation_errors == envelope["validationErrors"] and error.envelope == envelope


def test_a_non_envelope_error_and_a_non_json_answer_are_still_typed() -> None:
    client, _ = recording(httpx.Response(502, text="Bad gateway from a proxy"))
    with pytest.raises(ControlRefused) as refused:
        client.state()
    assert (refused.value.code, refused.value.detail) == ("http_502", "Bad gateway from a proxy")
    client, _ = recording(httpx.Response(200, text="<html>"))
    with pytest.raises(ControlError, match="non-JSON"):
        client.state()


def test_transport_failures_are_mock_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = ControlClient("http://mock.test", transport=httpx.MockTransport(refuse))
    with pytest.raises(MockUnreachable, match="cannot reach the mock at http://mock.test: connection refused"):
        client.clock()


def test_token_does_the_real_exchange() -> None:
    key_file = Path(__file__).resolve().parent.parent / "fixtures" / "dev-partner-ed25519-private.pem"
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, _app):
        for extra in ([], ["--private-key", str(key_file)]):
            result = CliRunner().invoke(main, ["token", "--base-url", url, *extra])
            assert result.exit_code == 0, result.output
            info = httpx.get(f"{url}/v1/oauth2/info", headers={"Authorization": f"Bearer {result.output.strip()}"})
            assert info.status_code == 200 and info.json()["clientId"] == DEV
        refused = CliRunner().invoke(main, ["token", "--base-url", url, "--audience", "https://api.zestequity.com"])
        assert refused.exit_code == 1 and "invalid_token" in refused.output


def test_the_shipped_dev_key_is_the_fixtures_key() -> None:
    key_file = Path(__file__).resolve().parent.parent / "fixtures" / "dev-partner-ed25519-private.pem"
    assert key_file.read_text() == dev_partner_private_key()
