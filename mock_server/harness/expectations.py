"""Scenario expectations: the evidence a run leaves in the mock, and the judgement of each expectation on it.

``fetch_evidence`` reads the control plane once (journal, delivery attempts, events, dead letters, processed
eventIds, the run's exit mark) and the served partner document (which writes take an Idempotency-Key); ``evaluate``
turns a scenario's expectations into one ``CaseResult`` each, a failure carrying the offending requests or
deliveries (method, path, key, status, fault, time as an offset from the scenario start). Every check is a pure
function of the evidence, so the same run always gets the same verdicts.

A verdict is one of three: passed, failed, or not exercised (the run gave the expectation nothing to judge, e.g.
no call failed so no retry could be timed); not exercised is reported as a JUnit ``skipped`` with the reason, never
as a pass. Timings come from the mock's own measurements, never from the reader's clock: attempt durations as the
dispatcher measured them, and the journal's arrival and answer instants for backoff.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mock_server.clock import parse_instant
from mock_server.harness import documents
from mock_server.harness.control_client import JSON, ControlClient, ControlRefused
from mock_server.harness.junit import CaseResult
from mock_server.scenarios.model import Scenario

AFTER_COMMIT = ("error_after_commit", "drop_after_commit")
RETRYABLE_STATUSES = frozenset({429, 499})
MAX_LINES = 20
# Backoff: a call counts inside the window only when the partner waited less than withinSeconds minus this, so the
# mock's millisecond stamps and its scheduling between reading a request and stamping it never count against it.
BACKOFF_TOLERANCE_S = 0.05
NOT_EXERCISED = "not exercised: "


@dataclass
class Evidence:
    """What a run left behind; ``attempts_cutoff`` (attempts recorded when the partner's command exited, from the
    mock's exit mark) and ``healthy_from`` bound the attempts a receiver answers for; ``keyed_writes``: the
    operations the served document shows taking an Idempotency-Key."""

    client_id: str
    requests: list[JSON]
    attempts: list[JSON]
    events: list[JSON]
    dead: list[JSON]
    processed: list[JSON]
    keyed_writes: frozenset[str]
    started_at: str | None = None
    attempts_cutoff: int | None = None
    healthy_from: int = 0

    def judged_attempts(self) -> list[JSON]:
        """Attempts made while the partner's receiver was meant to be up."""
        return self.attempts_until_exit()[self.healthy_from:]

    def attempts_until_exit(self) -> list[JSON]:
        """Attempts recorded before the partner's command exited, less the connection failures that end the run
        after its receiver's last answer: the receiver closing on the command's way out, before the exit."""
        if self.attempts_cutoff is None:
            return self.attempts
        before = self.attempts[:self.attempts_cutoff]
        return before[:_closing_tail(before)]

    def attempts_after_exit(self) -> list[JSON]:
        """Attempts the partner's receiver is not answerable for: after its command exited, or as it closed."""
        return self.attempts[len(self.attempts_until_exit()):]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    lines: tuple[str, ...] = ()
    skipped: bool = False


def not_exercised(reason: str, lines: tuple[str, ...] = ()) -> Verdict:
    """The run gave the expectation nothing to judge: neither a pass nor a failure (JUnit ``skipped``)."""
    return Verdict(False, NOT_EXERCISED + reason, lines, skipped=True)


def fetch_evidence(mock: ControlClient, client_id: str, *, started_at: str | None = None,
                   healthy_from: int = 0) -> Evidence:
    return Evidence(
        client_id=client_id,
        requests=[row for row in _items(mock.requests(limit=10_000))  # a refused token leaves no clientId
                  if row.get("clientId") in (client_id, None)],
        attempts=_items(mock.deliveries(client_id=client_id)),
        events=_items(mock.events(client_id=client_id)),
        dead=_items(mock.dead_letter(client_id=client_id)),
        processed=_items(mock.processed_events(client_id=client_id)),
        keyed_writes=documents.keyed_writes(mock.partner_document()),
        started_at=started_at, attempts_cutoff=_attempts_before_exit(mock, client_id), healthy_from=healthy_from,
    )


def _attempts_before_exit(mock: ControlClient, client_id: str) -> int | None:
    try:
        mark = mock.run_exit()
    except ControlRefused as exc:
        if exc.status == 404:  # no exit marked (a mock driven by hand): every attempt counts
            return None
        raise
    return int(mark["attemptsBefore"]) if mark.get("clientId") == client_id else None


def evaluate(scenario: Scenario, evidence: Evidence) -> list[CaseResult]:
    """One case per expectation of ``scenario``, in the scenario's order."""
    classname = f"zest-mock.scenario.{scenario.name}"
    return [judge(e.name, e.params.model_dump(), evidence, classname) for e in scenario.expectations]


def judge(name: str, params: dict[str, Any], evidence: Evidence, classname: str) -> CaseResult:
    check = CHECKS.get(name)
    started = time.perf_counter()
    if check is None:
        verdict = Verdict(False, f"unknown expectation {name!r}; known: {', '.join(sorted(CHECKS))}")
    else:
        verdict = check(evidence, **params)
    lines = list(verdict.lines[:MAX_LINES])
    if len(verdict.lines) > MAX_LINES:
        lines.append(f"... and {len(verdict.lines) - MAX_LINES} more")
    return CaseResult(name=name, classname=classname, passed=verdict.passed, message=verdict.message,
                      evidence="\n".join(lines), duration_s=time.perf_counter() - started, skipped=verdict.skipped)


# ---- the checks ---------------------------------------------------------------------------------------------------


def idempotent_retries(ev: Evidence) -> Verdict:
    """Every write retried after a 5xx, 429, timeout or drop reused its Idempotency-Key and its body."""
    pairs = list(_retries(ev.requests, ev.keyed_writes))
    if not pairs:
        return not_exercised("no keyed write failed and was retried")
    bad: list[str] = []
    for failed, retry in pairs:
        problem = _retry_problem(failed, retry)
        if problem:
            bad += [f"{problem}:", f"  failed  {_request(failed, ev)}", f"  retried {_request(retry, ev)}"]
    if bad:
        return Verdict(False, f"{len(bad) // 3} of {len(pairs)} retried write(s) changed key or body", tuple(bad))
    return Verdict(True, f"{len(pairs)} retried write(s) reused their key and body")


def no_duplicate_resources(ev: Evidence) -> Verdict:
    """No two creating calls with the same body under different Idempotency-Keys."""
    groups: dict[tuple[Any, ...], list[JSON]] = {}
    for row in ev.requests:
        if row.get("bodyHash") and (row.get("status") == 201 or _fault_action(row) in AFTER_COMMIT):
            groups.setdefault((row.get("operationId"), row.get("path"), row["bodyHash"]), []).append(row)
    if not groups:
        return not_exercised("no call created a resource")
    bad: list[str] = []
    for (operation, path, _), rows in groups.items():
        keys = {row.get("idempotencyKey") or f"(no key, #{row['seq']})" for row in rows}
        if len(keys) > 1:
            bad.append(f"{operation} {path}: the same body created under {len(keys)} keys:")
            bad += [f"  {_request(row, ev)}" for row in rows]
    if bad:
        return Verdict(False, "a retry with a new Idempotency-Key created a duplicate resource", tuple(bad))
    return Verdict(True, f"{len(groups)} created resource(s), none twice")


def form_before_funding(ev: Evidence) -> Verdict:
    """No funding upload before a successful signed-form upload for the same subscription."""
    formed: set[str] = set()
    bad: list[str] = []
    fundings = 0
    for row in ev.requests:
        path = str(row.get("path", ""))
        if row.get("operationId") == "uploadSubscriptionForm" and _success(row):
            formed.add(path.rsplit("/", 1)[0])
        elif row.get("operationId") == "uploadFundingReceipt":
            fundings += 1
            if path.rsplit("/", 1)[0] not in formed:
                bad.append(_request(row, ev))
    if not fundings:
        return not_exercised("no funding receipt was uploaded")
    if bad:
        return Verdict(False, f"{len(bad)} funding upload(s) before the signed form was accepted", tuple(bad))
    return Verdict(True, f"{fundings} funding upload(s), each after its form")


def backoff(ev: Evidence, maxCalls: int = 3, withinSeconds: float = 1.0) -> Verdict:
    """After a 5xx/429 answer (or a lost one), at most ``maxCalls`` calls to that endpoint within ``withinSeconds``
    of the partner's own time.

    Measured by the mock: from its answer to the failure (journal ``wallAt`` + ``durationMs``) to each later call's
    arrival, less the time the mock itself spent answering the partner's calls in between, so a mock slowed by a
    busy machine never passes for a partner's backoff. Simulated time cannot show it: scenarios run on a manual
    clock that stands still while the partner waits.
    """
    if any(row.get("wallAt") is None for row in ev.requests):
        return not_exercised("the journal has no wall times (wallAt)")
    failures = [row for row in ev.requests if _failed(row)]
    if not failures:
        return not_exercised("no call failed with a 5xx, 429 or a lost answer, so no retry was timed")
    window = withinSeconds - BACKOFF_TOLERANCE_S
    bad: list[str] = []
    for failure in failures:
        burst = [(waited, row) for waited, row in _waits_after(failure, ev.requests, window)
                 if _same_endpoint(row, failure)]
        if len(burst) > maxCalls:
            bad.append(f"{len(burst)} calls within {withinSeconds:g} s of waiting after {_request(failure, ev)}:")
            bad += [f"  waited {waited:.3f}s {_request(row, ev)}" for waited, row in burst]
    if bad:
        return Verdict(False, f"retried faster than {maxCalls} call(s) per {withinSeconds:g} s after a failure",
                       tuple(bad))
    return Verdict(True, f"{len(failures)} failure(s), each followed by at most {maxCalls} call(s) "
                         f"in {withinSeconds:g} s of waiting (tolerance {BACKOFF_TOLERANCE_S:g} s)")


def webhooks_acknowledged(ev: Evidence, withinSeconds: float = 10.0) -> Verdict:
    """Every attempt that reached the partner's receiver while it was up got a 2xx in time (the attempt's
    acknowledgement time as the mock's dispatcher measured it: the request's first byte out to the answer complete)."""
    real = [a for a in ev.judged_attempts() if not _synthetic(a)]
    limit_ms = withinSeconds * 1000
    bad = [_attempt(a, ev) for a in real if a.get("outcome") != "delivered" or (a.get("durationMs") or 0) > limit_ms]
    late = _after_exit(ev)
    if not real:
        return not_exercised("no delivery reached the partner's receiver while it was up (is one registered: "
                             "--webhook-url, or PUT /_mock/webhooks/endpoint?)", late)
    if bad:
        return Verdict(False, f"{len(bad)} of {len(real)} delivery attempt(s) not answered 2xx within "
                              f"{withinSeconds:g} s", tuple(bad) + late)
    return Verdict(True, f"{len(real)} delivery attempt(s) answered 2xx within {withinSeconds:g} s", late)


def tampered_rejected(ev: Evidence) -> Verdict:
    """Every delivery with a forged signature or a stale timestamp was refused with a 4xx."""
    tampered = [a for a in ev.attempts_until_exit() if str(a.get("outcome", "")).startswith("tamper_")]
    accepted = [_attempt(a, ev) for a in tampered if a.get("outcome") != "tamper_rejected"]
    late = _after_exit(ev)
    if not tampered:
        return not_exercised("no tampered delivery reached the receiver (webhookChaos.tamperShare sets them)", late)
    if accepted:
        return Verdict(False, f"{len(accepted)} of {len(tampered)} tampered delivery(ies) accepted",
                       tuple(accepted) + late)
    return Verdict(True, f"{len(tampered)} tampered delivery(ies) refused with a 4xx", late)


def events_processed_once(ev: Evidence) -> Verdict:
    """No eventId reported processed twice (POST /_mock/expectations/processed), none the mock never sent.

    Without reports, judged on what the mock sees: every event it delivered more than once (duplicates,
    redeliveries) must have every copy acknowledged 2xx, since a receiver that refuses a copy gets it again.
    """
    if not ev.processed:
        return _copies_acknowledged(ev)
    types = {e.get("eventId"): e.get("eventType") for e in ev.events}
    counts = Counter(str(row.get("eventId")) for row in ev.processed)
    twice = [f"{event_id} ({types.get(event_id, '?')}) processed {n} times" for event_id, n in counts.items() if n > 1]
    unknown = [f"{event_id} was never sent to this partner" for event_id in counts if event_id not in types]
    if twice or unknown:
        return Verdict(False, f"{len(twice)} event(s) processed more than once, {len(unknown)} unknown",
                       tuple(twice + unknown))
    return Verdict(True, f"{len(counts)} event(s) processed once each (from the partner's reports)")


def _copies_acknowledged(ev: Evidence) -> Verdict:
    copies: dict[str, dict[str, bool]] = {}  # eventId -> deliveryId -> acknowledged 2xx at last
    for a in ev.attempts_until_exit():
        if not _synthetic(a):
            chain = copies.setdefault(str(a.get("eventId")), {})
            chain[str(a.get("deliveryId"))] = chain.get(str(a.get("deliveryId")), False) or a.get("outcome") == \
                "delivered"
    repeated = {event_id: chains for event_id, chains in copies.items() if len(chains) > 1}
    if not repeated:
        return not_exercised("no processed eventIds were reported (POST /_mock/expectations/processed) and no "
                             "event reached the receiver twice")
    refused = [f"{event_id}: copy {delivery} never acknowledged 2xx" for event_id, chains in repeated.items()
               for delivery, acked in chains.items() if not acked]
    if refused:
        return Verdict(False, f"{len(refused)} repeated copy(ies) not acknowledged: a duplicate must be answered "
                              f"2xx and ignored", tuple(refused))
    return Verdict(True, f"{len(repeated)} event(s) delivered more than once, every copy acknowledged 2xx (no "
                         f"processing reports, so only acknowledgements were judged)")


def flow_completed(ev: Evidence, event: str = "subscription.completed") -> Verdict:
    """An event of type ``event`` was stored for the partner: the flow got to the end."""
    if any(e.get("eventType") == event for e in ev.events):
        return Verdict(True, f"{event} was emitted")
    seen = [f"{_offset(e.get('occurredAt'), ev)} {e.get('eventId')} {e.get('eventType')}" for e in ev.events]
    return Verdict(False, f"no {event} event: the flow did not reach completion", tuple(seen or ["no events at all"]))


def dead_letter_redelivered(ev: Evidence) -> Verdict:
    """Every dead delivery's event was later delivered by another delivery (a redelivery)."""
    if not ev.dead:
        return not_exercised("no delivery went to the dead letter")
    attempts = ev.attempts_until_exit()
    bad: list[str] = []
    for dead in ev.dead:
        last = max((i for i, a in enumerate(attempts) if a.get("deliveryId") == dead.get("deliveryId")), default=-1)
        if not any(a.get("eventId") == dead.get("eventId") and a.get("deliveryId") != dead.get("deliveryId")
                   and a.get("outcome") == "delivered" for a in attempts[last + 1:]):
            bad.append(f"{dead.get('deliveryId')} {dead.get('eventId')} dead after {dead.get('attempts')} "
                       f"attempt(s), never delivered again")
    if bad:
        return Verdict(False, f"{len(bad)} of {len(ev.dead)} dead delivery(ies) not redelivered", tuple(bad))
    return Verdict(True, f"{len(ev.dead)} dead delivery(ies), each redelivered")


def failed_rows_handled(ev: Evidence, minBackoffSeconds: float = 0.2) -> Verdict:
    """Investor rows that failed were handled: a retryable one resubmitted (same partnerInvestorId, no sooner than
    ``minBackoffSeconds`` after the mock answered the attempt it retries, measured like ``backoff``) until
    ``created`` or ``already_exists``; a non-retryable one never resubmitted unchanged; every partnerInvestorId
    sent ends mapped to exactly one zestPersonId, except one set aside after a non-retryable failure; subscriptions
    created only for persons the partner was given."""
    tries = _row_attempts(ev.requests)
    failures = sum(1 for attempts in tries.values() for request, row in attempts
                   if _success(request) and row.get("status") == "failed")
    if not failures:  # nothing to judge is not a pass
        return not_exercised("no investor row failed in an answer the partner received (add a fail_rows fault rule "
                             "on bulkCreateInvestors)")
    persons: set[str] = set()
    problems: list[str] = []
    shown: tuple[list[str], list[str]] = ([], [])  # the attempts of each investor with a failed row: bad, fine
    set_aside = 0
    for partner_investor_id, attempts in tries.items():
        found = _row_problems(attempts, minBackoffSeconds, ev.requests)
        mapped = {str(row["zestPersonId"]) for request, row in attempts
                  if _success(request) and row.get("status") in ("created", "already_exists") and row["zestPersonId"]}
        persons |= mapped
        last = next((row for request, row in reversed(attempts) if _success(request)), None)
        if len(mapped) > 1:
            found.append(f"mapped to {len(mapped)} zestPersonIds: {', '.join(sorted(mapped))}")
        elif not mapped and last is not None and last.get("status") == "failed" and last.get("retryable") is False:
            set_aside += 1
        elif not mapped:
            found.append("never mapped to a zestPersonId")
        problems += [f"{partner_investor_id}: {problem}" for problem in found]
        if found or any(row.get("status") == "failed" for _, row in attempts):
            lines = [f"{partner_investor_id}: {len(attempts)} attempt(s)"]
            lines += [f"  {_row_attempt(request, row, attempts[index - 1][0] if index else None, ev)}"
                      for index, (request, row) in enumerate(attempts)]
            shown[0 if found else 1].extend(lines)
    subscribed = [e.get("data") or {} for e in ev.events if e.get("eventType") == "subscription.created"]
    problems += [f"subscription {d.get('subscriptionSlug')} created for {d.get('personId')}, a person no investor "
                 f"row answer gave the partner" for d in subscribed if d.get("personId") not in persons]
    if problems:
        return Verdict(False, f"{len(problems)} problem(s) handling {failures} failed investor row(s)",
                       tuple(problems + shown[0] + shown[1]))
    return Verdict(True, f"{failures} failed row(s) handled: {len(tries) - set_aside} investor(s) mapped, {set_aside} "
                         f"set aside after a non-retryable error, {len(subscribed)} subscription(s), all for mapped "
                         f"persons", tuple(shown[1]))


Check = Callable[..., Verdict]
CHECKS: dict[str, Check] = {check.__name__: check for check in (
    idempotent_retries, no_duplicate_resources, form_before_funding, backoff, webhooks_acknowledged,
    tampered_rejected, events_processed_once, flow_completed, dead_letter_redelivered,
    failed_rows_handled,
)}


# ---- helpers ------------------------------------------------------------------------------------------------------


def _retries(requests: list[JSON], keyed_writes: frozenset[str]) -> Iterable[tuple[JSON, JSON]]:
    """(failed keyed write, the next call to the same method and path) pairs."""
    for index, row in enumerate(requests):
        if row.get("operationId") in keyed_writes and _failed(row):
            retry = next((later for later in requests[index + 1:] if _same_endpoint(later, row)), None)
            if retry is not None:
                yield row, retry


def _retry_problem(failed: JSON, retry: JSON) -> str | None:
    key = failed.get("idempotencyKey")
    if not key:
        return "a write without an Idempotency-Key was retried (the retry cannot be recognised)"
    if retry.get("idempotencyKey") != key:
        return "the retry used a different Idempotency-Key"
    if failed.get("bodyHash") and retry.get("bodyHash") and failed["bodyHash"] != retry["bodyHash"]:
        return "the retry changed the body"
    return None


def _row_attempts(requests: list[JSON]) -> dict[str, list[tuple[JSON, JSON]]]:
    """partnerInvestorId -> every (bulk create call, row outcome) for it, in the order they were answered."""
    tries: dict[str, list[tuple[JSON, JSON]]] = {}
    for request in requests:
        for row in request.get("rows") or ():
            if row.get("partnerInvestorId"):
                tries.setdefault(str(row["partnerInvestorId"]), []).append((request, row))
    return tries


def _waited(failure: JSON, retry: JSON, requests: list[JSON]) -> float | None:
    """How long the partner waited between the mock's answer to ``failure`` and ``retry`` (see ``_waits``)."""
    if any(row.get("wallAt") is None for row in requests):  # as for backoff: no wall times, nothing timed
        return None
    return next((waited for waited, row in _waits(failure, requests) if row["seq"] == retry["seq"]), None)


def _row_problems(attempts: list[tuple[JSON, JSON]], min_backoff: float, requests: list[JSON]) -> list[str]:
    problems: list[str] = []
    refused = False
    for index, (request, row) in enumerate(attempts):
        if not _success(request) or row.get("status") != "failed":
            continue  # a lost answer told the partner nothing
        later = attempts[index + 1:]
        if row.get("retryable"):
            if not later:
                problems.append(f"the retryable failure of #{request.get('seq')} was never resubmitted")
                continue
            retry, _ = later[0]
            waited = _waited(request, retry, requests)
            if waited is not None and waited < min_backoff - BACKOFF_TOLERANCE_S:
                problems.append(f"#{retry.get('seq')} resubmitted it after waiting {waited:.3f} s from the answer to "
                                f"#{request.get('seq')}, less than {min_backoff:g} s (tolerance "
                                f"{BACKOFF_TOLERANCE_S:g} s): no backoff")
            if retry.get("idempotencyKey") and retry.get("idempotencyKey") == request.get("idempotencyKey"):
                problems.append(f"#{retry.get('seq')} reused the Idempotency-Key of #{request.get('seq')}, so Zest "
                                f"replayed the failed answer: resubmit failed rows as a new request")
        elif row.get("errorCode") != "duplicate_in_batch" and not refused:
            unchanged = [f"#{r.get('seq')}" for r, again in later if again.get("rowHash") == row.get("rowHash")]
            refused = True  # the later refusals of the same row tell nothing new
            if unchanged:
                problems.append(f"refused for good in #{request.get('seq')} ({row.get('errorCode')} "
                                f"{row.get('field') or ''}), then resubmitted unchanged in {', '.join(unchanged)}")
    return problems


def _row_attempt(request: JSON, row: JSON, previous: JSON | None, ev: Evidence) -> str:
    line = f"#{request.get('seq')} {row.get('status')}"
    if row.get("status") == "failed":
        line += f" {row.get('errorCode')} {'retryable' if row.get('retryable') else 'not retryable'}"
        line += f" field={row['field']}" if row.get("field") else ""
    elif row.get("zestPersonId"):
        line += f" {row['zestPersonId']}"
    line += f" fault={row['fault']}" if row.get("fault") else ""
    line += "" if _success(request) else f" (answer lost: {request.get('status')})"
    if previous is not None and previous.get("wallAt") is not None and request.get("wallAt") is not None:
        line += f" +{float(request['wallAt']) - float(previous['wallAt']):.3f}s"
    key = str(request.get("idempotencyKey") or "-")
    return f"{line} key={key[:8]}{'...' if len(key) > 8 else ''} at {_offset(request.get('at'), ev)}"


def _failed(row: JSON) -> bool:
    status = int(row.get("status") or 0)
    return status >= 500 or status in RETRYABLE_STATUSES or (bool(row.get("fault")) and not _success(row))


def _success(row: JSON) -> bool:
    return 200 <= int(row.get("status") or 0) < 300


def _same_endpoint(a: JSON, b: JSON) -> bool:
    return a.get("method") == b.get("method") and a.get("path") == b.get("path")


def _fault_action(row: JSON) -> str | None:
    fault = row.get("fault")
    return str(fault).split("#", 1)[0] if fault else None


def _synthetic(attempt: JSON) -> bool:
    """Attempts the mock failed or forged itself: they never tested the receiver's acknowledgement."""
    fault = str(attempt.get("fault") or "")
    return fault == "fail_attempts" or fault.startswith("tamper") or str(attempt.get("outcome")).startswith("tamper")


def _waits_after(failure: JSON, requests: list[JSON], window: float) -> Iterable[tuple[float, JSON]]:
    """(seconds the partner waited, call) for each call after ``failure`` that arrived within ``window`` of the
    partner's own time (see ``_waits``)."""
    return itertools.takewhile(lambda pair: pair[0] < window, _waits(failure, requests))


def _waits(failure: JSON, requests: list[JSON]) -> Iterator[tuple[float, JSON]]:
    """(seconds the partner waited, call) for each call after ``failure``, in arrival order: elapsed since the mock
    answered ``failure``, less the union of the intervals the mock spent answering the partner's calls in between,
    so a mock slowed by a busy machine never passes for a partner's backoff. Measured on the journal's ``wallAt``
    and ``durationMs``, both the mock's own readings."""
    answered = _answered(failure)
    busy, busy_until = 0.0, answered
    for row in sorted((r for r in requests if r["seq"] > failure["seq"]), key=lambda r: float(r["wallAt"])):
        arrived = float(row["wallAt"])
        yield max(arrived - answered - busy, 0.0), row
        start, end = max(arrived, busy_until), _answered(row)
        if end > start:
            busy, busy_until = busy + end - start, end


def _closing_tail(attempts: list[JSON]) -> int:
    """Where the run's trailing connection failures start, if the receiver answered anything before them."""
    end = len(attempts)
    while end and _connection_failure(attempts[end - 1]):
        end -= 1
    return end if any(a.get("statusCode") is not None for a in attempts[:end]) else len(attempts)


def _connection_failure(attempt: JSON) -> bool:
    error = str(attempt.get("error") or "")
    return attempt.get("statusCode") is None and (error == "connect_error" or error.startswith("transport_error"))


def _answered(row: JSON) -> float:
    return float(row["wallAt"]) + float(row.get("durationMs") or 0) / 1000


def _after_exit(ev: Evidence) -> tuple[str, ...]:
    late = ev.attempts_after_exit()
    return tuple(f"after exit (not judged): {_attempt(a, ev)}" for a in late)


def _request(row: JSON, ev: Evidence) -> str:
    line = (f"#{row.get('seq')} {row.get('method')} {row.get('path')} key={row.get('idempotencyKey') or '-'} "
            f"status={row.get('status')}")
    if row.get("fault"):
        line += f" fault={row['fault']}"
    return f"{line} at {_offset(row.get('at'), ev)}"


def _attempt(a: JSON, ev: Evidence) -> str:
    result = a.get("statusCode") if a.get("statusCode") is not None else a.get("error")
    line = (f"{a.get('deliveryId')} {a.get('eventId')} attempt {a.get('attempt')} {a.get('outcome')} {result} "
            f"{a.get('durationMs')}ms")
    if a.get("fault"):
        line += f" fault={a['fault']}"
    return f"{line} at {_offset(a.get('at'), ev)}"


def _offset(at: Any, ev: Evidence) -> str:
    """``T+2h00m05s`` from the scenario start (stable across runs), or the raw instant without a start."""
    if not at or not ev.started_at:
        return str(at)
    seconds = (parse_instant(str(at)) - parse_instant(ev.started_at)).total_seconds()
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"T{sign}{int(hours)}h{int(minutes):02d}m{secs:06.3f}s" if hours else f"T{sign}{int(minutes)}m{secs:06.3f}s"


def _items(result: JSON) -> list[JSON]:
    return list(result.get("items") or [])
