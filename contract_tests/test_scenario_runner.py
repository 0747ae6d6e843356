"""The scenario runner end to end, with the shipped example partners.

Every shipped scenario passes with ``examples/partner/reference_partner.py``; the careless partner fails exactly the
expectations its sins touch in each scenario (the table below); expectations a scenario cannot exercise for either
partner say so (JUnit skipped), never pass; the JUnit report carries one testcase per expectation with the
evidence; the same seed replays the same ids and fault decisions; ``zest-mock scenario run`` exits as documented.
Every run is a real ``zest-mock scenario run`` process with the partner as its own subprocess, the way CI runs it,
a few at a time, so one run's load never lands in another's process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mock_server.app import partner_document
from mock_server.cli import main
from mock_server.harness import documents
from mock_server.harness.expectations import Evidence, judge
from mock_server.harness.junit import CaseResult
from mock_server.harness.runner import run_scenario
from mock_server.scenarios.model import library_names, load_scenario

ROOT = Path(__file__).resolve().parent.parent
PARTNERS = ROOT / "examples" / "partner"
REFERENCE, CARELESS = PARTNERS / "reference_partner.py", PARTNERS / "careless_partner.py"
TIMEOUT = 120.0  # a hang guard for the partner, never a verdict
PARALLEL_RUNS = 3

# scenario -> the expectations the careless partner fails there (it always exits 0: only its habits are wrong)
CARELESS_FAILS: dict[str, set[str]] = {
    "api_flaky_5xx": {"idempotent_retries", "backoff", "form_before_funding"},
    "bad_signatures": {"tampered_rejected", "events_processed_once"},
    "duplicate_webhooks": {"events_processed_once"},
    "funding_before_form": {"form_before_funding", "backoff"},
    "happy_path": {"form_before_funding"},
    "idempotency_conflict": {"idempotent_retries", "no_duplicate_resources", "backoff"},
    "investor_rows_partially_fail": {"failed_rows_handled", "form_before_funding"},
    "out_of_order_webhooks": set(),
    "post_timeout_after_commit": {"idempotent_retries", "no_duplicate_resources", "backoff", "form_before_funding"},
    "reconciler_completion": set(),
    "slow_review": {"form_before_funding"},
    "spv_cancelled_while_pending": set(),
    "spv_rejected": set(),
    "token_expiry": {"form_before_funding"},
    "upload_limits": {"form_before_funding"},
    "webhook_receiver_down": set(),
}
# scenario -> the expectations neither partner can exercise there: no fault ever makes a write fail
NOT_EXERCISED: dict[str, set[str]] = {name: {"idempotent_retries"} for name in (
    "funding_before_form", "happy_path", "investor_rows_partially_fail", "out_of_order_webhooks",
    "reconciler_completion", "slow_review", "spv_cancelled_while_pending", "spv_rejected", "token_expiry",
    "upload_limits", "webhook_receiver_down")}
SINS = {"idempotent_retries", "no_duplicate_resources", "backoff", "form_before_funding", "tampered_rejected",
        "events_processed_once", "failed_rows_handled"}
REPLAYED = "api_flaky_5xx"  # random (seeded) faults on top of fixed ones: the strictest replay
SLOW = ("api_flaky_5xx", "funding_before_form", "idempotency_conflict", "upload_limits", "webhook_receiver_down")
TIMINGS = ("command", "durationS", "junit")


@dataclass
class Run:
    """A ``zest-mock scenario run --json`` process's outcome."""

    returncode: int
    report: dict[str, Any]
    stderr: str

    @property
    def ok(self) -> bool:
        return bool(self.report.get("ok"))

    def statuses(self, status: str) -> set[str]:
        return {case["name"] for case in self.report.get("cases", []) if case["status"] == status}

    def without_timings(self) -> dict[str, Any]:
        cases = [{k: v for k, v in case.items() if k != "durationS"} for case in self.report["cases"]]
        return {**{k: v for k, v in self.report.items() if k not in TIMINGS}, "cases": cases}

    def explain(self) -> str:
        lines = [f"exit {self.returncode}", *self.report.get("timeline", [])]
        for case in self.report.get("cases", []):
            lines.append(f"{case['status']} {case['name']}: {case['message']}\n    "
                         + case["evidence"].replace("\n", "\n    "))
        return "\n".join(lines) + ("\nstderr:\n" + self.stderr[-3000:] if self.stderr else "")


def scenario_process(name: str, *command: str, extra: tuple[str, ...] = ()) -> Run:
    """Run ``zest-mock scenario run NAME --json [extra] -- COMMAND`` as its own process."""
    args = [sys.executable, "-m", "mock_server", "scenario", "run", name, "--json", "--timeout", f"{TIMEOUT:g}",
            *extra, "--", *command]
    done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT * 3, cwd=ROOT)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = {"ok": False, "cases": [], "timeline": [f"no JSON report; stdout: {done.stdout[-2000:]!r}"]}
    return Run(done.returncode, report, done.stderr)


PARTNER_FILES = {"reference": REFERENCE, "careless": CARELESS, "replay": REFERENCE}


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], Run]:
    """Every scenario with both partners, plus a second reference run of REPLAYED, a few processes at a time."""
    jobs = [("replay", REPLAYED)] + [(partner, name) for name in library_names() for partner in ("reference",
                                                                                              "careless")]
    jobs.sort(key=lambda job: job[1] not in SLOW)  # the long ones first, so they do not finish last
    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:  # threads only wait for their processes
        futures = {job: pool.submit(scenario_process, job[1], sys.executable, str(PARTNER_FILES[job[0]]))
                   for job in jobs}
        return {job: future.result() for job, future in futures.items()}


def test_the_tables_cover_the_library_and_every_sin_is_caught_somewhere() -> None:
    assert set(CARELESS_FAILS) == set(library_names())
    assert set().union(*CARELESS_FAILS.values()) == SINS
    for name, failing in CARELESS_FAILS.items():
        assert failing <= {e.name for e in load_scenario(name).expectations}, name
        assert not failing & NOT_EXERCISED.get(name, set()), name


@pytest.mark.parametrize("name", library_names())
def test_the_reference_partner_passes_every_scenario(runs: dict[tuple[str, str], Run], name: str) -> None:
    run = runs["reference", name]
    assert run.ok and run.returncode == 0, run.explain()
    assert [case["name"] for case in run.report["cases"]] == ["command",
                                                              *(e.name for e in load_scenario(name).expectations)]
    assert run.statuses("SKIP") == NOT_EXERCISED.get(name, set()), run.explain()


@pytest.mark.parametrize("name", library_names())
def test_the_careless_partner_fails_exactly_the_targeted_expectations(runs: dict[tuple[str, str], Run],
                                                                      name: str) -> None:
    run = runs["careless", name]
    assert run.report["exitCode"] == 0, run.explain()
    assert run.statuses("FAIL") == CARELESS_FAILS[name], run.explain()
    assert run.statuses("SKIP") == NOT_EXERCISED.get(name, set()), run.explain()
    assert run.ok == (not CARELESS_FAILS[name]) and run.returncode == (1 if CARELESS_FAILS[name] else 0)
    for case in run.report["cases"]:
        assert case["status"] != "FAIL" or case["evidence"], f"{case['name']} failed without evidence"


def test_the_same_seed_replays_the_same_report(runs: dict[tuple[str, str], Run]) -> None:
    first, second = runs["reference", REPLAYED], runs["replay", REPLAYED]
    assert first.report["facts"]["faults"], "the replayed scenario must fire faults"
    assert first.without_timings() == second.without_timings()


def test_an_integration_that_does_nothing_is_not_reported_green() -> None:
    run = scenario_process("happy_path", "true")
    assert run.returncode == 1 and not run.ok
    command = run.report["cases"][0]
    assert command["name"] == "command" and command["status"] == "FAIL"
    assert command["message"] == "your command made no API calls"
    assert run.statuses("PASS") == set(), run.explain()
    assert run.statuses("SKIP") == {"idempotent_retries", "no_duplicate_resources", "form_before_funding",
                                    "webhooks_acknowledged", "events_processed_once"}
    for case in run.report["cases"]:
        assert case["status"] != "SKIP" or case["message"].startswith("not exercised: "), case


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_webhook_url_registers_the_receiver_and_acknowledgements_judge_duplicates() -> None:
    """A partner with no mock-only code (no ZEST_MOCK_URL: it neither registers nor reports) is judged on the
    receiver the runner registered and on its 2xx answers to the duplicates the mock sent."""
    port = _free_port()
    run = scenario_process("duplicate_webhooks", "env", "-u", "ZEST_MOCK_URL", f"ZEST_WEBHOOK_PORT={port}",
                           sys.executable, str(REFERENCE),
                           extra=("--webhook-url", f"http://127.0.0.1:{port}/zest/webhooks"))
    assert run.ok, run.explain()
    cases = {case["name"]: case for case in run.report["cases"]}
    assert "every copy acknowledged 2xx" in cases["events_processed_once"]["message"]
    assert cases["webhooks_acknowledged"]["status"] == "PASS"


def test_a_subprocess_partner_gets_the_environment_and_a_junit_report(tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    report = run_scenario("post_timeout_after_commit", [sys.executable, str(CARELESS)], junit=junit,
                          timeout=TIMEOUT)
    assert report.exit_code == 0 and set(report.failed_names()) == CARELESS_FAILS["post_timeout_after_commit"]
    suite = ET.parse(junit).getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == [c.name for c in report.cases]
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == "4"
    duplicate = cases["no_duplicate_resources"].find("failure")
    assert duplicate is not None and "POST /v1/spv-requests" in (duplicate.text or "")
    assert "fault=drop_after_commit#" in (duplicate.text or "")
    assert cases["command"].find("failure") is None and cases["flow_completed"].find("failure") is None


def test_not_exercised_is_a_junit_skip_with_its_reason(tmp_path: Path) -> None:
    junit = tmp_path / "idle.xml"
    report = run_scenario("spv_rejected", ["true"], junit=junit, timeout=TIMEOUT)
    suite = ET.parse(junit).getroot()
    skipped = {case.get("name"): case.find("skipped") for case in suite.iter("testcase")
               if case.find("skipped") is not None}
    assert set(skipped) == {c.name for c in report.cases if c.skipped} and skipped
    assert suite.get("skipped") == str(len(skipped))
    for element in skipped.values():
        assert element is not None and str(element.get("message")).startswith("not exercised: ")


def test_a_command_that_fails_or_cannot_start_fails_the_run(tmp_path: Path) -> None:
    failed = run_scenario("spv_rejected", [sys.executable, "-c", "raise SystemExit(3)"], timeout=TIMEOUT)
    assert not failed.ok and failed.cases[0].message == "exited 3"
    assert "flow_completed" in failed.failed_names()
    assert failed.timeline == ["step 1: reject_pending at T+1800s: not reached (spv_request_pending did not happen "
                               "before the command ended)"]
    missing = run_scenario("spv_rejected", [str(tmp_path / "no-such-program")], timeout=TIMEOUT)
    assert missing.exit_code == 127 and "cannot start" in missing.cases[0].evidence


def test_a_command_over_its_time_is_stopped() -> None:
    report = run_scenario("spv_rejected", [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert report.exit_code is None and report.cases[0].message == "timed out after 0.5 s"


def test_cli_scenario_run_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    junit = tmp_path / "cli.xml"
    ok = runner.invoke(main, ["scenario", "run", "happy_path", "--junit", str(junit), "--",
                              sys.executable, str(REFERENCE)])
    assert ok.exit_code == 0, ok.output
    assert "scenario happy_path: PASSED" in ok.stdout and junit.is_file()
    careless = runner.invoke(main, ["scenario", "run", "happy_path", "--", sys.executable, str(CARELESS)])
    assert careless.exit_code == 1
    assert "FAIL form_before_funding" in careless.stdout and "/fundings" in careless.stdout
    crashed = runner.invoke(main, ["scenario", "run", "spv_rejected", "--json", "--", sys.executable, "-c",
                                   "raise SystemExit(2)"])
    assert crashed.exit_code == 1 and '"exitCode": 2' in crashed.stdout
    unknown = runner.invoke(main, ["scenario", "run", "no_such_scenario", "--", "true"])
    assert unknown.exit_code == 1 and "unknown scenario 'no_such_scenario'" in unknown.stderr
    assert runner.invoke(main, ["scenario", "run", "happy_path"]).exit_code == 2  # COMMAND is required


# ---- the checks on hand-made evidence: the paths the example partners never take ---------------------------------

def _row(seq: int, status: int, *, key: str | None = "k1", body: str | None = "h1", wall: float | None = 0.0,
         ms: float = 10.0, fault: str | None = None, path: str = "/v1/spv-requests") -> dict[str, object]:
    return {"seq": seq, "at": "2026-05-07T12:00:00.000Z", "method": "POST", "path": path,
            "operationId": "createSpvRequest", "clientId": "dev-partner", "idempotencyKey": key, "bodyHash": body,
            "status": status, "fault": fault, "wallAt": wall, "durationMs": ms}


def _attempt(delivery: str, event: str, outcome: str, *, fault: str | None = None,
             ms: float = 5.0) -> dict[str, object]:
    return {"deliveryId": delivery, "eventId": event, "attempt": 1, "at": "2026-05-07T12:00:00.000Z",
            "statusCode": 200 if outcome == "delivered" else None, "error": None, "durationMs": ms,
            "outcome": outcome, "fault": fault}


def _judge(name: str, params: dict[str, object] | None = None, **evidence: object) -> CaseResult:
    base: dict[str, object] = {"client_id": "dev-partner", "requests": [], "attempts": [], "events": [], "dead": [],
                               "processed": [], "started_at": "2026-05-07T12:00:00.000Z",
                               "keyed_writes": documents.keyed_writes(partner_document())}
    return judge(name, params or {}, Evidence(**{**base, **evidence}), "unit")  # type: ignore[arg-type]


def test_checks_on_hand_made_evidence() -> None:
    assert _judge("idempotent_retries", requests=[_row(1, 503, body=None), _row(2, 201)]).passed
    changed = [_row(1, 502, fault="error_after_commit#1"), _row(2, 409, body="h2")]  # the handler ran: hash known
    assert "changed the body" in _judge("idempotent_retries", requests=changed).evidence
    assert "different Idempotency-Key" in _judge("idempotent_retries", requests=[_row(1, 503), _row(2, 201, key="k2")
                                                                                 ]).evidence
    assert _judge("webhooks_acknowledged", attempts=[_attempt("d1", "e1", "failed")]).failed
    slow = _judge("webhooks_acknowledged", {"withinSeconds": 1.0}, attempts=[_attempt("d1", "e1", "delivered",
                                                                                     ms=1500.0)])
    assert slow.failed and "1500.0ms" in slow.evidence
    assert "never sent" in _judge("events_processed_once", processed=[{"eventId": "e9"}]).evidence
    dead = [{"deliveryId": "d1", "eventId": "e1", "attempts": 6}]
    chain = [_attempt("d1", "e1", "failed"), _attempt("d2", "e1", "delivered")]
    assert _judge("dead_letter_redelivered", dead=dead, attempts=chain).passed
    assert _judge("dead_letter_redelivered", dead=dead, attempts=chain[:1]).failed
    assert "unknown expectation" in _judge("no_such_check").message


def _bulk(seq: int, rows: list[dict[str, object]], *, key: str | None = None, wall: float = 0.0,
          status: int = 200) -> dict[str, object]:
    return {**_row(seq, status, key=key or f"k{seq}", body=f"h{seq}", wall=wall, path="/v1/investors"),
            "operationId": "bulkCreateInvestors", "rows": rows}


def _investor(pid: str, status: str, *, person: str | None = None, retryable: bool | None = None,
              row_hash: str = "r1") -> dict[str, object]:
    failed = status == "failed"
    return {"index": 0, "partnerInvestorId": pid, "rowHash": row_hash, "status": status, "zestPersonId": person,
            "errorCode": ("internal_error" if retryable else "validation_error") if failed else None,
            "retryable": retryable if failed else None, "field": None if retryable or not failed else "email",
            "fault": "fail_rows#1" if failed else None}


def test_failed_rows_handled_on_hand_made_evidence() -> None:
    nothing = _judge("failed_rows_handled", requests=[_bulk(1, [_investor("a", "created", person="psn_a")])])
    assert nothing.skipped and nothing.message.startswith("not exercised: ")  # never a vacuous pass
    handled = [_bulk(1, [_investor("a", "failed", retryable=True), _investor("b", "failed", retryable=False)]),
               _bulk(2, [_investor("a", "already_exists", person="psn_a")], wall=0.5)]
    ok = _judge("failed_rows_handled", requests=handled,
                events=[{"eventType": "subscription.created", "data": {"personId": "psn_a"}}])
    assert ok.passed and "1 set aside" in ok.message and "a: 2 attempt(s)" in ok.evidence
    replayed = [_bulk(1, [_investor("a", "failed", retryable=True)]),
                _bulk(2, [_investor("a", "failed", retryable=True)], key="k1", wall=0.5)]
    assert "replayed the failed answer" in _judge("failed_rows_handled", requests=replayed).evidence
    lost = [_bulk(1, [_investor("a", "failed", retryable=True)]),
            _bulk(2, [_investor("a", "created", person="psn_a")], wall=0.5, status=504)]
    assert "a: never mapped" in _judge("failed_rows_handled", requests=lost).evidence  # the answer never arrived
    stray = _judge("failed_rows_handled", requests=handled,
                   events=[{"eventType": "subscription.created", "data": {"subscriptionSlug": "sub_x",
                                                                          "personId": "psn_elsewhere"}}])
    assert stray.failed and "sub_x created for psn_elsewhere" in stray.evidence
    changed = [_bulk(1, [_investor("b", "failed", retryable=False)]),
               _bulk(2, [_investor("b", "created", person="psn_b", row_hash="r2")], wall=0.5)]
    assert _judge("failed_rows_handled", requests=changed).passed  # corrected, then resubmitted: fine


def test_failed_rows_backoff_is_the_partners_waiting_measured_by_the_mock() -> None:
    def bulk(seq: int, wall: float, ms: float, row: dict[str, object]) -> dict[str, object]:
        return {**_bulk(seq, [row], wall=wall), "durationMs": ms}

    failed, created = _investor("a", "failed", retryable=True), _investor("a", "created", person="psn_a")
    # resubmitted the instant the answer arrived: 0.5 s between arrivals, all of it the mock answering slowly
    hasty = _judge("failed_rows_handled", requests=[bulk(1, 0.0, 500, failed), bulk(2, 0.5, 10, created)])
    assert hasty.failed and "after waiting 0.000 s" in hasty.evidence and "tolerance 0.05 s" in hasty.evidence
    # waited 0.3 s after the answer: a backoff, however long the mock took
    patient = _judge("failed_rows_handled", requests=[bulk(1, 0.0, 500, failed), bulk(2, 0.8, 10, created)])
    assert patient.passed
    # 0.17 s is within the tolerance of 0.2 s, 0.14 s is not
    assert _judge("failed_rows_handled", requests=[bulk(1, 0.0, 10, failed), bulk(2, 0.18, 10, created)]).passed
    assert _judge("failed_rows_handled", requests=[bulk(1, 0.0, 10, failed), bulk(2, 0.15, 10, created)]).failed


def test_nothing_to_judge_is_not_exercised_never_a_pass() -> None:
    synthetic = [_attempt("d1", "e1", "failed", fault="fail_attempts")]  # the mock failed it: the receiver untested
    for name, evidence in [("idempotent_retries", {"requests": [_row(1, 201)]}), ("no_duplicate_resources", {}),
                           ("form_before_funding", {}), ("backoff", {"requests": [_row(1, 201)]}),
                           ("backoff", {"requests": [_row(1, 503, wall=None)]}),
                           ("webhooks_acknowledged", {"attempts": synthetic}), ("tampered_rejected", {}),
                           ("events_processed_once", {"attempts": [_attempt("d1", "e1", "delivered")]}),
                           ("dead_letter_redelivered", {})]:
        case = _judge(name, **evidence)
        assert case.skipped and not case.passed and not case.failed, (name, case)
        assert case.message.startswith("not exercised: "), (name, case.message)
    assert _judge("flow_completed").failed  # an end not reached is a failure, not a gap in the evidence


def test_attempts_after_the_partner_exited_are_listed_not_judged() -> None:
    late = [_attempt("d1", "e1", "delivered"), _attempt("d2", "e1", "failed")]
    case = _judge("webhooks_acknowledged", attempts=late, attempts_cutoff=1)
    assert case.passed and "after exit (not judged): d2 e1" in case.evidence
    assert _judge("webhooks_acknowledged", attempts=late).failed  # without the exit mark every attempt counts
    gone = _judge("webhooks_acknowledged", attempts=late[1:], attempts_cutoff=0)
    assert gone.skipped and "after exit" in gone.evidence


def _lost(delivery: str, error: str) -> dict[str, object]:
    return {**_attempt(delivery, "e2", "failed"), "statusCode": None, "error": error}


def test_connection_failures_after_the_receivers_last_answer_are_its_closing() -> None:
    closing = [_attempt("d1", "e1", "delivered"), _lost("d2", "transport_error"), _lost("d2", "connect_error")]
    case = _judge("webhooks_acknowledged", attempts=closing, attempts_cutoff=3)  # all before the exit mark
    assert case.passed and case.evidence.count("after exit (not judged)") == 2
    # a refused connection the receiver later recovered from is its failure
    recovered = [closing[0], _lost("d2", "connect_error"), _attempt("d2", "e2", "delivered")]
    assert _judge("webhooks_acknowledged", attempts=recovered, attempts_cutoff=3).failed
    # so is a receiver that never answered at all, and one that hung (a timeout is not a closed door)
    never = [_lost("d1", "connect_error")]
    assert _judge("webhooks_acknowledged", attempts=never, attempts_cutoff=1).failed
    hung = [closing[0], _lost("d2", "timeout")]
    assert _judge("webhooks_acknowledged", attempts=hung, attempts_cutoff=2).failed


def test_backoff_counts_the_partners_own_waiting_measured_by_the_mock() -> None:
    # a retry loop that waits 0.1 s between calls: three calls inside the second, whatever the machine's load
    loop = [_row(1, 503), _row(2, 503, wall=0.11), _row(3, 503, wall=0.22), _row(4, 201, wall=0.33)]
    hammered = _judge("backoff", {"maxCalls": 2, "withinSeconds": 1.0}, requests=loop)
    assert hammered.failed and "waited 0.100s" in hammered.evidence and "waited 0.300s" in hammered.evidence
    # the same calls, but the mock took 0.5 s to answer each: its slowness is not the partner's waiting
    slow_mock = [_row(1, 503, ms=500), _row(2, 503, wall=0.6, ms=500), _row(3, 503, wall=1.2, ms=500),
                 _row(4, 201, wall=1.8, ms=500)]
    assert _judge("backoff", {"maxCalls": 2, "withinSeconds": 1.0}, requests=slow_mock).failed
    # growing waits (0.3 s, 0.6 s, 1.2 s): two calls within the second after the first failure
    patient = [_row(1, 503), _row(2, 503, wall=0.31), _row(3, 503, wall=0.92), _row(4, 201, wall=2.13)]
    verdict = _judge("backoff", {"maxCalls": 2, "withinSeconds": 1.0}, requests=patient)
    assert verdict.passed and "tolerance 0.05 s" in verdict.message
    # other endpoints' calls in between are the partner's time too, less the mock's time answering them
    other = {"path": "/v1/oauth2/tokens"}
    mixed = [_row(1, 503), _row(2, 201, wall=0.05, ms=900, **other), _row(3, 503, wall=0.96),  # type: ignore[arg-type]
             _row(4, 503, wall=0.98), _row(5, 201, wall=1.0)]
    assert _judge("backoff", {"maxCalls": 2, "withinSeconds": 1.0}, requests=mixed).failed
