"""The scenario runner end to end, with the shipped example partners.

Every shipped scenario passes with ``examples/partner/reference_partner.py``; the careless partner fails exactly the
expectations its sins touch in each scenario (the table below); the JUnit report carries one testcase per
expectation with the evidence; the same seed replays the same ids and fault decisions; ``zest-mock scenario run``
exits as documented. Most runs drive the partners' ``main`` in a thread, all at once (the runs are independent
servers on their own ports); a few run the partners as real subprocesses, the way CI does.
"""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from mock_server.app import partner_document
from mock_server.cli import main
from mock_server.harness import documents
from mock_server.harness.expectations import Evidence, judge
from mock_server.harness.junit import CaseResult
from mock_server.harness.runner import RunReport, run_scenario
from mock_server.scenarios.model import library_names, load_scenario

ROOT = Path(__file__).resolve().parent.parent
PARTNERS = ROOT / "examples" / "partner"
REFERENCE, CARELESS = PARTNERS / "reference_partner.py", PARTNERS / "careless_partner.py"
TIMEOUT = 60.0

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
SINS = {"idempotent_retries", "no_duplicate_resources", "backoff", "form_before_funding", "tampered_rejected",
        "events_processed_once", "failed_rows_handled"}
REPLAYED = "api_flaky_5xx"  # random (seeded) faults on top of fixed ones: the strictest replay
SLOW = ("api_flaky_5xx", "funding_before_form", "idempotency_conflict")  # Retry-After, backoff and latency waits


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


PartnerMain = Callable[[Mapping[str, str]], int]
MAINS: dict[str, PartnerMain] = {"reference": _module(REFERENCE).main, "careless": _module(CARELESS).main}


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], RunReport]:
    """Every scenario with both partners, plus a second reference run of REPLAYED, all at once."""
    jobs = [("replay", REPLAYED)] + [(partner, name) for name in library_names() for partner in MAINS]
    jobs.sort(key=lambda job: job[1] not in SLOW)  # the long ones first, so they do not finish last
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {(partner, name): pool.submit(run_scenario, name, MAINS.get(partner, MAINS["reference"]),
                                                timeout=TIMEOUT) for partner, name in jobs}
        return {key: future.result() for key, future in futures.items()}


def _explain(report: RunReport) -> str:
    lines = [report.summary, *report.timeline]
    for case in report.cases:
        lines.append(f"{case.status} {case.name}: {case.message}\n    " + case.evidence.replace("\n", "\n    "))
    return "\n".join(lines)


def test_the_table_covers_the_library_and_every_sin_is_caught_somewhere() -> None:
    assert set(CARELESS_FAILS) == set(library_names())
    assert set().union(*CARELESS_FAILS.values()) == SINS
    for name, failing in CARELESS_FAILS.items():
        assert failing <= {e.name for e in load_scenario(name).expectations}, name


@pytest.mark.parametrize("name", library_names())
def test_the_reference_partner_passes_every_scenario(runs: dict[tuple[str, str], RunReport], name: str) -> None:
    report = runs["reference", name]
    assert report.ok, _explain(report)
    assert [case.name for case in report.cases] == ["command", *(e.name for e in load_scenario(name).expectations)]
    assert not any(case.skipped for case in report.cases), _explain(report)


@pytest.mark.parametrize("name", library_names())
def test_the_careless_partner_fails_exactly_the_targeted_expectations(runs: dict[tuple[str, str], RunReport],
                                                                      name: str) -> None:
    report = runs["careless", name]
    assert report.exit_code == 0, _explain(report)
    assert set(report.failed_names()) == CARELESS_FAILS[name], _explain(report)
    assert report.ok == (not CARELESS_FAILS[name])
    for case in report.cases:
        assert not case.failed or case.evidence, f"{case.name} failed without evidence"


def test_the_same_seed_replays_the_same_report(runs: dict[tuple[str, str], RunReport]) -> None:
    first, second = runs["reference", REPLAYED], runs["replay", REPLAYED]
    assert first.facts["faults"], "the replayed scenario must fire faults"
    assert first.to_dict(timings=False) == second.to_dict(timings=False)


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


def test_the_reference_partner_as_a_subprocess_passes() -> None:
    report = run_scenario("bad_signatures", [sys.executable, str(REFERENCE)], timeout=TIMEOUT)
    assert report.ok, _explain(report)


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
         fault: str | None = None, path: str = "/v1/spv-requests") -> dict[str, object]:
    return {"seq": seq, "at": "2026-05-07T12:00:00.000Z", "method": "POST", "path": path,
            "operationId": "createSpvRequest", "clientId": "dev-partner", "idempotencyKey": key, "bodyHash": body,
            "status": status, "fault": fault, "wallAt": wall}


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
    assert _judge("backoff", requests=[_row(1, 503, wall=None)]).skipped
    hammered = _judge("backoff", {"maxCalls": 1, "withinSeconds": 1.0},
                      requests=[_row(1, 503), _row(2, 503, wall=0.1), _row(3, 201, wall=0.2)])
    assert hammered.failed and "+0.200s" in hammered.evidence
    assert _judge("webhooks_acknowledged", attempts=[_attempt("d1", "e1", "failed", fault="fail_attempts")]).failed
    slow = _judge("webhooks_acknowledged", {"withinSeconds": 1.0}, attempts=[_attempt("d1", "e1", "delivered",
                                                                                     ms=1500.0)])
    assert slow.failed and "1500.0ms" in slow.evidence
    late = [_attempt("d1", "e1", "delivered"), _attempt("d2", "e1", "failed")]
    assert _judge("webhooks_acknowledged", attempts=late, attempts_cutoff=1).passed
    assert _judge("events_processed_once").skipped
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
    assert nothing.failed and nothing.message.startswith("not exercised")  # never a vacuous pass
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
