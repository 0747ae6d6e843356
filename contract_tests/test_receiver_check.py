"""The receiver check (``zest-mock verify-receiver``) against real loopback receivers, correct and broken in known
ways, plus the JUnit writer and summary line it reports through."""

from __future__ import annotations

import json
import re
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from receiver import verify

from mock_server.cli import main
from mock_server.harness.junit import CaseResult, summary_line, write_junit
from mock_server.harness.receiver_check import battery, check_receiver, zest_headers

SECRET = "whsec_" + "cd" * 32
FORGED = ["tampered_body", "wrong_secret", "missing_signature", "malformed_signature[garbage]",
          "malformed_signature[t=abc,v1=zz]", "malformed_signature[no_v1]", "stale_timestamp[-301s]",
          "stale_timestamp[-3600s]", "future_timestamp[+301s]"]
DATA_FIELDS = {  # written from the reference §3.4, not from the code under test
    "spv_request.created": {"spvRequestSlug", "templateId", "templateVersion", "tenantSlug", "attributes", "status"},
    "investor.created": {"partnerInvestorId", "zestPersonId", "email", "firstName", "lastName", "kycManagedBy"},
    "subscription.created": {"subscriptionSlug", "spvSlug", "personId", "partnerSubscriptionId", "lumpSum",
                             "shareClassSlug", "status"},
    "signed_subscription_form.uploaded": {"subscriptionSlug", "spvSlug", "personId", "partnerInvestorId",
                                          "subscriptionFormUrl", "uploadedAt"},
    "funding_receipt.uploaded": {"subscriptionSlug", "spvSlug", "personId", "partnerInvestorId", "fundingReceiptUrl",
                                 "amount", "currency", "wireReference", "uploadedAt"},
    "subscription.completed": {"subscriptionSlug", "spvSlug", "personId", "partnerInvestorId",
                               "partnerSubscriptionId", "completedAt", "status"},
}
SPV = DATA_FIELDS["spv_request.created"]
DATA_FIELDS |= {"spv_request.completed": SPV | {"materialisedRefs", "approvedAt"},
                "spv_request.rejected": SPV | {"rejectionReason", "rejectedAt"},
                "spv_request.cancelled": SPV | {"cancelledAt"}}
STATUS = {"spv_request.created": "pending-review", "spv_request.completed": "approved",
          "spv_request.rejected": "rejected", "spv_request.cancelled": "cancelled",
          "subscription.created": "pending", "subscription.completed": "completed"}

Decide = Callable[[dict[str, str], bytes], int]


@dataclass
class Target:
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def serving(decide: Decide) -> Iterator[Target]:
    """A real HTTP receiver on loopback that records every request and answers ``decide(headers, body)``."""
    target = Target()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            target.received.append((headers, body))
            self.send_response(decide(headers, body))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up (the timeout case) is not an error of the test

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    target.url = f"http://127.0.0.1:{server.server_address[1]}/zest/webhooks"
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def correct(secret: str = SECRET, *, on_duplicate: int = 200, on_unknown: int = 200) -> Decide:
    """Verifies per the docs (``receiver.verify``), dedups eventIds but acknowledges duplicates."""
    seen: set[str] = set()
    lock = threading.Lock()

    def decide(headers: dict[str, str], body: bytes) -> int:
        if not verify(headers.get("zest-signature", ""), body, secret):
            return 401
        event = json.loads(body)
        with lock:
            duplicate = event["eventId"] in seen
            seen.add(event["eventId"])
        if duplicate:
            return on_duplicate
        return 200 if event["eventType"] in DATA_FIELDS else on_unknown

    return decide


def results(report: Any) -> dict[str, CaseResult]:
    return {case.name: case for case in report.cases}


def failed(report: Any) -> set[str]:
    return {case.name for case in report.cases if case.failed}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/zest/webhooks"


def verify_receiver(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["verify-receiver", *args], env=env)


# --- against a correct receiver ---------------------------------------------------------------------------------

def test_a_correct_receiver_passes_every_case() -> None:
    with serving(correct()) as target:
        report = check_receiver(target.url, SECRET)
    assert report.ok and not failed(report), [(c.name, c.message) for c in report.cases if c.failed]
    assert report.summary == "21 passed, 0 failed"
    assert report.requests_sent == len(target.received) == 22 <= 40
    assert all("request: POST " + target.url in case.evidence for case in report.cases)


def test_valid_deliveries_carry_the_documented_envelope_headers_and_data() -> None:
    with serving(correct()) as target:
        check_receiver(target.url, SECRET)
    valid = [(h, json.loads(b)) for h, b in target.received if verify(h.get("zest-signature", ""), b, SECRET)]
    by_type = {event["eventType"]: (headers, event) for headers, event in valid}
    assert set(DATA_FIELDS) <= set(by_type)
    for event_type, fields in DATA_FIELDS.items():
        headers, event = by_type[event_type]
        assert set(event) == {"eventId", "eventType", "occurredAt", "data"}
        assert re.fullmatch(r"wde_[0-9a-f]{16}", event["eventId"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["occurredAt"])
        assert set(event["data"]) == fields, event_type
        assert event["data"].get("status", STATUS.get(event_type)) == STATUS.get(event_type)
        assert headers["content-type"] == "application/json" and headers["user-agent"] == "ZestWebhooks/1.0"
        assert headers["zest-event-id"] == event["eventId"] and headers["zest-event-type"] == event_type
    ids = [json.loads(b)["eventId"] for _, b in target.received]
    assert len(ids) - len(set(ids)) == 1  # fresh ids everywhere but the deliberate duplicate


def test_cli_exits_0_and_writes_a_junit_report_that_parses(tmp_path: Path) -> None:
    junit = tmp_path / "reports" / "receiver.xml"
    with serving(correct()) as target:
        result = verify_receiver(target.url, "--secret", SECRET, "--junit", str(junit), "--timeout", "5")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "21 passed, 0 failed"
    assert len(lines) == 22 and all(line.startswith("PASS ") for line in lines[:-1])
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("21", "0", "0")
    assert len(suite.findall("testcase")) == 21 and not suite.findall(".//failure")


def test_cli_reads_the_secret_from_the_environment_and_prints_json() -> None:
    with serving(correct()) as target:
        result = verify_receiver(target.url, "--json", env={"ZEST_WEBHOOK_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["failed"] == 0 and report["passed"] == 21
    assert report["requests_sent"] == 22 and len(report["cases"]) == 21


def test_cli_requires_a_secret() -> None:
    result = verify_receiver("http://127.0.0.1:9/x", env={"ZEST_WEBHOOK_SECRET": ""})
    assert result.exit_code == 2 and "--secret" in result.output


# --- against broken receivers -----------------------------------------------------------------------------------

def test_a_receiver_that_skips_signature_checks_fails_the_forged_and_stale_cases(tmp_path: Path) -> None:
    junit = tmp_path / "receiver.xml"
    with serving(lambda headers, body: 200) as target:
        result = verify_receiver(target.url, "--secret", SECRET, "--junit", str(junit))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "12 passed, 9 failed"
    stale = "FAIL stale_timestamp[-301s]: answered 200: the receiver accepts forged or replayed webhooks"
    assert stale in result.output
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("21", "9")
    failures = {case.get("name"): case.find("failure") for case in suite.findall("testcase")}
    assert {name for name, failure in failures.items() if failure is not None} == set(FORGED)
    tampered = failures["tampered_body"]
    assert tampered is not None and "a correct receiver verifies the HMAC" in tampered.get("message", "")
    assert "Zest-Signature: t=" in (tampered.text or "") and "response: 200" in (tampered.text or "")
    assert "on purpose: v1 signs the same envelope" in (tampered.text or "")


def test_a_receiver_that_answers_500_to_bad_signatures_fails_them() -> None:
    ok = correct()
    with serving(lambda headers, body: 500 if ok(headers, body) == 401 else 200) as target:
        report = check_receiver(target.url, SECRET)
    assert failed(report) == set(FORGED)
    assert "reject it with 4xx, not a server error" in results(report)["wrong_secret"].message


def test_a_receiver_that_500s_on_duplicates_fails_only_the_duplicate_case() -> None:
    with serving(correct(on_duplicate=500)) as target:
        report = check_receiver(target.url, SECRET)
    assert failed(report) == {"duplicate_event_id"}
    message = results(report)["duplicate_event_id"].message
    assert message.startswith("delivery 2 of 2: answered 500") and "acknowledges a redelivered eventId" in message


def test_a_receiver_that_500s_on_unknown_event_types_fails_only_that_case() -> None:
    with serving(correct(on_unknown=500)) as target:
        report = check_receiver(target.url, SECRET)
    assert failed(report) == {"unknown_event_type"}
    case = results(report)["unknown_event_type"]
    assert "answered 500 (server error)" in case.message and "Zest-Event-Type: spv_request.archived" in case.evidence


def test_rejecting_unknown_event_types_with_4xx_is_allowed() -> None:
    with serving(correct(on_unknown=422)) as target:
        assert check_receiver(target.url, SECRET).ok


def test_a_receiver_that_rejects_extra_signature_versions_fails_that_case() -> None:
    ok = correct()
    with serving(lambda headers, body: 400 if ",v2=" in headers.get("zest-signature", "") else ok(headers, body)
                 ) as target:
        report = check_receiver(target.url, SECRET)
    assert failed(report) == {"unknown_signature_version[v2]"}


def test_a_receiver_that_hangs_is_cut_off_at_the_timeout() -> None:
    release = threading.Event()
    ok = correct()

    def decide(headers: dict[str, str], body: bytes) -> int:
        if headers.get("zest-event-type") == "investor.created":
            release.wait(5)  # holds the answer until the test is done with it; no sleep
        return ok(headers, body)

    try:
        with serving(decide) as target:
            report = check_receiver(target.url, SECRET, timeout_s=0.3)
            release.set()
    finally:
        release.set()
    assert failed(report) == {"valid_event[investor.created]"}
    case = results(report)["valid_event[investor.created]"]
    assert case.message.startswith("timeout: no complete response within 0.3 s") and 0.3 <= case.duration_s < 2


def test_a_closed_port_fails_every_case_with_the_connect_error_and_does_not_crash(tmp_path: Path) -> None:
    url = closed_port_url()
    report = check_receiver(url, SECRET)
    assert not report.ok and report.summary == "0 passed, 21 failed"
    assert report.requests_sent == 1  # the rest are not sent once the endpoint proved unreachable
    for case in report.cases:
        assert "connect error" in case.message and "connect error" in case.evidence
        assert f"request: POST {url}" in case.evidence
    junit = tmp_path / "receiver.xml"
    result = verify_receiver(url, "--secret", SECRET, "--junit", str(junit))
    assert result.exit_code == 1 and result.output.splitlines()[-1] == "0 passed, 21 failed"
    assert ET.parse(junit).getroot().get("failures") == "21"


def test_a_url_without_a_scheme_is_reported_not_raised() -> None:
    report = check_receiver("localhost:8000/hooks", SECRET)
    assert report.counts.failed == 21 and report.requests_sent == 1
    assert report.cases[0].message.startswith("endpoint unreachable: invalid URL")


def test_stale_and_future_timestamps_stay_outside_the_window_despite_rounding_and_latency() -> None:
    now = 1_800_000_000.999
    cases = {case.name: case for case in battery(SECRET, clock=lambda: now)}
    for name in ("stale_timestamp[-301s]", "future_timestamp[+301s]", "valid_event[investor.created]"):
        (probe,) = cases[name].probes
        header = zest_headers(probe, now)["Zest-Signature"]
        t = int(header.split(",")[0].removeprefix("t="))
        accepted = [verify(header, probe.body, SECRET, now=now + latency) for latency in (0.0, 0.5, 0.99)]
        assert accepted == [name.startswith("valid")] * 3, (name, t - now)


# --- the request budget -----------------------------------------------------------------------------------------

def test_never_more_requests_than_the_budget() -> None:
    with serving(correct()) as target:
        report = check_receiver(target.url, SECRET, max_requests=5)
    assert report.requests_sent == len(target.received) == 5
    assert report.summary == "5 passed, 0 failed, 16 skipped" and report.ok


def test_a_two_request_case_is_not_started_with_one_request_left() -> None:
    with serving(correct()) as target:
        report = check_receiver(target.url, SECRET, max_requests=20)
    assert report.requests_sent == len(target.received) == 20
    assert [case.name for case in report.cases if case.skipped] == ["duplicate_event_id"]
    assert results(report)["unknown_event_type"].passed


def test_a_zero_budget_sends_nothing() -> None:
    with serving(correct()) as target:
        report = check_receiver(target.url, SECRET, max_requests=0)
    assert report.requests_sent == len(target.received) == 0 and report.counts.skipped == 21


# --- JUnit writer and summary line ------------------------------------------------------------------------------

def test_summary_line() -> None:
    passed = CaseResult("a", "k", True)
    failing = CaseResult("b", "k", False, "boom")
    skipped = CaseResult("c", "k", False, "later", skipped=True)
    assert summary_line([]) == "0 passed, 0 failed"
    assert summary_line([passed] * 12 + [failing]) == "12 passed, 1 failed"
    assert summary_line([passed, failing, skipped, skipped]) == "1 passed, 1 failed, 2 skipped"


def test_write_junit_counts_escapes_and_carries_evidence(tmp_path: Path) -> None:
    cases = [
        CaseResult("ok <1>", "suite.k", True, evidence="sent & got 200", duration_s=0.25),
        CaseResult('bad "2"', "suite.k", False, "expected 4xx, got 200 <&>\nnext line",
                   "response: 200: \x00\x1b[31mred\x1b[0m </failure>", duration_s=1.5),
        CaseResult("later", "suite.k", False, "budget spent", skipped=True),
    ]
    path = tmp_path / "nested" / "junit.xml"
    write_junit(path, "receiver <check>", cases)
    assert path.read_bytes().startswith(b"<?xml")
    suite = ET.parse(path).getroot()
    assert suite.attrib == {"name": "receiver <check>", "tests": "3", "failures": "1", "errors": "0",
                            "skipped": "1", "time": "1.750"}
    ok, bad, later = suite.findall("testcase")
    assert (ok.get("name"), ok.get("classname"), ok.get("time")) == ("ok <1>", "suite.k", "0.250")
    assert ok.find("failure") is None and ok.findtext("system-out") == "sent & got 200"
    failure = bad.find("failure")
    assert failure is not None and failure.get("message") == "expected 4xx, got 200 <&>\nnext line"
    assert failure.text == "response: 200: \ufffd\ufffd[31mred\ufffd[0m </failure>"
    skipped = later.find("skipped")
    assert skipped is not None and skipped.get("message") == "budget spent" and later.find("failure") is None
