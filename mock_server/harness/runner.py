"""The scenario runner: serve a mock with a scenario loaded, run the partner's command against it while playing the
scenario's timeline, then judge the expectations and report (``RunReport``, JUnit XML).

The mock runs in this process (uvicorn in a thread on loopback); the command gets ``ZEST_BASE_URL``,
``ZEST_MOCK_URL``, ``ZEST_CLIENT_ID``, ``ZEST_PRIVATE_KEY_FILE``, ``ZEST_WEBHOOK_SECRET``, ``ZEST_AUDIENCE`` and
``ZEST_SCENARIO``, and runs as a subprocess in its own process group (stopped with it on a timeout). Given a
``webhook_url``, the runner registers the partner's receiver itself, so the partner needs no mock-only call.
Timeline conditions are read from the stored events, so the journal holds only the partner's calls. The moment the
command exits, the runner marks it in the mock (``POST /_mock/runs/exit``): delivery attempts the mock records
after that, and the connection failures after the receiver's last answer (it closing on the command's way out),
are listed as after exit, not held against the receiver. JWT assertions are accepted with a leeway spanning the
timeline, since the partner signs them with its own wall clock while the mock's is simulated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mock_server.clock import format_instant, parse_instant
from mock_server.dev_partner import dev_partner_private_key
from mock_server.harness.control_client import JSON, ControlClient, ControlError
from mock_server.harness.expectations import Evidence, evaluate, fetch_evidence
from mock_server.harness.junit import CaseResult, count, summary_line, write_junit
from mock_server.presets import DEV_CLIENT_ID
from mock_server.scenarios.model import Scenario, Step, load_scenario
from mock_server.serving import in_thread
from mock_server.settings import Settings

DEFAULT_TIMEOUT = 300.0
POLL_SECONDS = 0.02
TERMINAL_SPV_EVENTS = ("spv_request.completed", "spv_request.rejected", "spv_request.cancelled")


@dataclass
class RunReport:
    """A run's outcome: the command's exit, one case per expectation (plus the command's), the timeline played."""

    scenario: str
    seed: int
    command: list[str]
    exit_code: int | None
    cases: list[CaseResult]
    timeline: list[str] = field(default_factory=list)
    facts: dict[str, list[str]] = field(default_factory=dict)
    duration_s: float = 0.0
    junit: Path | None = None
    evidence: Evidence | None = None  # what the verdicts were judged on (the HTML report draws it)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and count(self.cases).failed == 0

    @property
    def summary(self) -> str:
        verdict = "PASSED" if self.ok else "FAILED"
        return f"scenario {self.scenario}: {verdict} ({summary_line(self.cases)}) in {self.duration_s:.1f} s"

    def failed_names(self) -> list[str]:
        return [case.name for case in self.cases if case.failed]

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """JSON-ready; without ``timings`` it holds only what a seed decides (for comparing two runs)."""
        cases = [{"name": c.name, "status": c.status, "message": c.message, "evidence": c.evidence,
                  **({"durationS": round(c.duration_s, 3)} if timings else {})} for c in self.cases]
        document: dict[str, Any] = {"scenario": self.scenario, "seed": self.seed, "ok": self.ok,
                                    "exitCode": self.exit_code, "cases": cases, "timeline": self.timeline,
                                    "facts": self.facts}
        if timings:
            document.update(command=self.command, durationS=round(self.duration_s, 3),
                            junit=str(self.junit) if self.junit else None)
        return document


def run_scenario(name_or_path: str | Path, command: Sequence[str], *, port: int = 0, junit: Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None,
                 webhook_url: str | None = None) -> RunReport:
    """Serve, load, (register ``webhook_url``,) run ``command`` while the timeline plays, mark its exit, settle,
    judge; raises ``ScenarioError`` on a bad scenario and ``OSError`` when the port cannot be bound."""
    started = time.perf_counter()
    scenario = load_scenario(name_or_path)
    served = in_thread(port, name="zest-scenario-mock", seed=scenario.seed, clock_mode=scenario.clock)
    with served as (url, settings), ControlClient(url) as mock, \
            tempfile.TemporaryDirectory(prefix="zest-scenario-") as scratch:
        start = _load(mock, scenario)
        exports = _exports(mock, settings, scenario, Path(scratch))
        if webhook_url is not None:
            mock.set_webhook_endpoint(webhook_url, client_id=DEV_CLIENT_ID)
        timeline = Timeline(mock, scenario, start)
        player = threading.Thread(target=timeline.play, name="zest-scenario-timeline", daemon=True)
        player.start()
        ran = time.perf_counter()
        exit_code, problem = _execute(command, {**(env if env is not None else os.environ), **exports}, timeout)
        ran = time.perf_counter() - ran
        mock.mark_exit(DEV_CLIENT_ID)
        timeline.finish()
        player.join(timeout=60)
        mock.advance(seconds=0)
        evidence = fetch_evidence(mock, DEV_CLIENT_ID, started_at=format_instant(start),
                                  healthy_from=timeline.healthy_from)
        command_case = _command_case(scenario.name, exit_code, problem, timeout, ran, bool(evidence.requests))
        cases = [command_case, *evaluate(scenario, evidence)]
    report = RunReport(scenario=scenario.name, seed=scenario.seed, command=list(command),
                       exit_code=exit_code, cases=cases, timeline=timeline.log, facts=_facts(evidence),
                       duration_s=time.perf_counter() - started, junit=junit, evidence=evidence)
    if junit is not None:
        write_junit(junit, f"zest-mock scenario {scenario.name}", cases)
    return report


# ---- loading and exports -----------------------------------------------------------------------------------------


def _load(mock: ControlClient, scenario: Scenario) -> datetime:
    """Apply the scenario through the control plane; returns the simulated instant it started at."""
    loaded = mock.load_scenario_document(scenario.to_document())  # library or not: the file as it was read
    return parse_instant(str(loaded["startedAt"]))


def _exports(mock: ControlClient, settings: Settings, scenario: Scenario, scratch: Path) -> dict[str, str]:
    key_file = scratch / "ed25519-private.pem"
    key_file.write_text(dev_partner_private_key())
    key_file.chmod(0o600)
    partner = next(p for p in _items(mock.partners()) if p.get("clientId") == DEV_CLIENT_ID)
    return {"ZEST_BASE_URL": settings.base_url, "ZEST_MOCK_URL": settings.base_url, "ZEST_CLIENT_ID": DEV_CLIENT_ID,
            "ZEST_PRIVATE_KEY_FILE": str(key_file), "ZEST_WEBHOOK_SECRET": str(partner["webhookSecret"]),
            "ZEST_AUDIENCE": settings.expected_audience, "ZEST_SCENARIO": scenario.name}


# ---- the command ----------------------------------------------------------------------------------------------


def _execute(command: Sequence[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """The command's exit code (None: it did not finish in time) and what went wrong, if anything."""
    try:  # its own process group, so stopping it also stops whatever it started (a shell's children)
        process = subprocess.Popen(list(command), env=env, start_new_session=True)
    except OSError as exc:
        return 127, f"cannot start {command[0]!r}: {exc}"
    try:
        return process.wait(timeout=timeout), ""
    except subprocess.TimeoutExpired:
        _stop(process)
        return None, f"did not finish within {timeout:g} s and was stopped"
    except BaseException:  # Ctrl-C reaches only the runner now: take the command down with it
        _stop(process)
        raise


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _command_case(scenario: str, exit_code: int | None, problem: str, timeout: float, seconds: float,
                  called: bool) -> CaseResult:
    classname = f"zest-mock.scenario.{scenario}"
    if exit_code == 0 and not called:
        return CaseResult("command", classname, False, "your command made no API calls",
                          evidence="it exited 0 without one call under /v1/, so nothing it does was exercised",
                          duration_s=seconds)
    if exit_code == 0:
        return CaseResult("command", classname, True, "exited 0", duration_s=seconds)
    message = f"timed out after {timeout:g} s" if exit_code is None else f"exited {exit_code}"
    return CaseResult("command", classname, False, message, evidence=problem, duration_s=seconds)


# ---- the timeline ---------------------------------------------------------------------------------------------


class Timeline:
    """Plays the steps in order: wait for the step's condition, move the clock to its offset, act.

    While the command runs, a condition is polled on wall time; once the command has ended (``finish``) the steps
    whose conditions already hold are still played, and the first one that does not hold ends the timeline, so the
    played steps depend on what the partner did, never on thread timing.
    """

    def __init__(self, mock: ControlClient, scenario: Scenario, start: datetime) -> None:
        self.mock, self.scenario, self.start = mock, scenario, start
        self.log: list[str] = []
        self.healthy_from = 0
        self._ended = threading.Event()

    def finish(self) -> None:
        self._ended.set()

    def play(self) -> None:
        for number, step in enumerate(self.scenario.timeline, 1):
            head = f"step {number}: {step.do}{_at(step.at)}"
            try:
                if not self._wait(step.waitFor):
                    self.log.append(f"{head}: not reached ({step.waitFor} did not happen before the command ended)")
                    return
                self._move(step.at)
                self.log.append(f"{head}: {self._do(step)}")
            except ControlError as exc:
                self.log.append(f"{head}: the mock refused: {exc}")
            except Exception as exc:  # a broken step is reported in the timeline, never a dead thread
                self.log.append(f"{head}: failed: {type(exc).__name__}: {exc}")

    def _wait(self, condition: str) -> bool:
        while True:
            ended = self._ended.is_set()
            if condition == "none" or _holds(condition, _items(self.mock.events(client_id=DEV_CLIENT_ID))):
                return True
            if ended:
                return False
            self._ended.wait(POLL_SECONDS)

    def _move(self, at: float | None) -> None:
        if at is None:
            return
        target = self.start + timedelta(seconds=at)
        if target > parse_instant(str(self.mock.clock()["now"])):
            self.mock.advance(to=format_instant(target))

    def _do(self, step: Step) -> str:
        events = _items(self.mock.events(client_id=DEV_CLIENT_ID))
        if step.do == "approve_pending":
            return _each("approved", [self.mock.approve(slug)["spvRequestSlug"] for slug in _pending(events)])
        if step.do == "reject_pending":
            reason = step.reason or "rejected by the scenario"
            return _each("rejected", [self.mock.reject(slug, reason)["spvRequestSlug"] for slug in _pending(events)])
        if step.do == "complete_funded":
            done = [self.mock.complete(slug, step.emit)["subscriptionSlug"] for slug in _funded(events)]
            return _each("completed", done)
        if step.do == "redeliver_dead":
            dead = dict.fromkeys(str(d["eventId"]) for d in _items(self.mock.dead_letter(client_id=DEV_CLIENT_ID)))
            return _each("redelivered", [self.mock.redeliver(event_id)["eventId"] for event_id in dead])
        if step.do == "set_endpoint_healthy":
            self.healthy_from = len(_items(self.mock.deliveries(client_id=DEV_CLIENT_ID)))
            return f"deliveries from attempt {self.healthy_from + 1} on are judged"
        if step.do == "clear_faults":
            return f"removed {self.mock.clear_faults().get('removed', '?')} fault rule(s)"
        if step.do == "clear_chaos":
            self.mock.set_chaos(DEV_CLIENT_ID, {})
            return "webhook chaos off"
        return "clock moved"


def _holds(condition: str, events: list[JSON]) -> bool:
    if condition == "spv_request_pending":
        return bool(_pending(events))
    if condition == "spv_request_any":
        return any(e.get("eventType") == "spv_request.created" for e in events)
    if condition == "subscription_funded":
        return bool(_funded(events))
    return any(e.get("eventType") == condition.removeprefix("event:") for e in events)


def _pending(events: list[JSON]) -> list[str]:
    """SPV requests created and not yet approved, rejected or cancelled, oldest first."""
    return _open(events, "spv_request.created", TERMINAL_SPV_EVENTS, "spvRequestSlug")


def _funded(events: list[JSON]) -> list[str]:
    """Subscriptions with a funding receipt and no completion yet, oldest first."""
    return _open(events, "funding_receipt.uploaded", ("subscription.completed",), "subscriptionSlug")


def _open(events: list[JSON], opening: str, closing: Sequence[str], key: str) -> list[str]:
    opened = [e["data"][key] for e in events if e.get("eventType") == opening]
    closed = {e["data"][key] for e in events if e.get("eventType") in closing}
    return [slug for slug in dict.fromkeys(opened) if slug not in closed]


def _each(verb: str, slugs: list[str]) -> str:
    return f"{verb} {', '.join(slugs)}" if slugs else f"nothing to do ({verb} none)"


def _at(at: float | None) -> str:
    return "" if at is None else f" at T+{at:g}s"


# ---- helpers --------------------------------------------------------------------------------------------------


def _facts(evidence: Evidence) -> dict[str, list[str]]:
    """What the seed decides: the events' ids and types, and which calls the fault rules hit."""
    return {
        "events": [f"{e.get('eventId')} {e.get('eventType')}" for e in evidence.events],
        "faults": [f"#{r.get('seq')} {r.get('operationId')} {r.get('fault')} -> {r.get('status')}"
                   for r in evidence.requests if r.get("fault")],
        "deadDeliveries": [f"{d.get('deliveryId')} {d.get('eventId')}" for d in evidence.dead],
    }


def _items(result: JSON) -> list[JSON]:
    return list(result.get("items") or [])
