"""The receiver check: a bounded battery of webhook deliveries sent to a partner's endpoint, each answer judged.

It owns the battery (valid events of the nine types, forged, malformed, stale and future signatures, an unknown
signature version, a duplicate, an unknown event type), sending it (sequentially, only to the given URL, never more
than ``max_requests`` requests, redirects not followed) and judging the answers into ``CaseResult``s with the
request and response as evidence. Deliveries look as Zest sends them: exact signed bytes, ``Zest-Signature``,
``Zest-Event-Id``, ``Zest-Event-Type``, ``User-Agent: ZestWebhooks/1.0``. ``t`` is the wall clock at sending,
because the receiver checks it against its own clock. Nothing here prints; ``cli.py`` renders the report.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from mock_server.clock import format_instant
from mock_server.harness.junit import CaseResult, Counts, count, summary_line
from mock_server.webhooks.events import EVENT_TYPES
from mock_server.webhooks.signing import HEADER, header_value

CLASSNAME = "zest.verify_receiver"
UNKNOWN_EVENT_TYPE = "spv_request.archived"
WINDOW_S = 300
EXCERPT_CHARS = 400

Expect = Literal["2xx", "4xx", "not 5xx"]
Signer = Callable[[float, bytes], str | None]  # (unix time now, body sent) -> Zest-Signature value; None: omit it
WallClock = Callable[[], float]


# --- payloads ---------------------------------------------------------------------------------------------------

def _slug(prefix: str, length: int = 6) -> str:
    return prefix + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def _spv_request(status: str, at: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "spvRequestSlug": _slug("svr_"), "templateId": "syndicate_secondary", "templateVersion": "1.0.0",
        "tenantSlug": "acme", "status": status,
        "attributes": {"underlyingCompanySlug": "co_acme", "currency": "USD", "shareClasses": [
            {"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]},
    }
    if status == "approved":
        data["materialisedRefs"] = {"opportunitySlug": _slug("opp_"), "vehicleSlug": _slug("veh_"),
                                    "spSlug": _slug("sp_"), "spcSlug": _slug("spc_")}
        data["approvedAt"] = at
    elif status == "rejected":
        data.update(rejectionReason="Underlying company is not on the approved list.", rejectedAt=at)
    elif status == "cancelled":
        data["cancelledAt"] = at
    return data


def _holder() -> dict[str, Any]:
    return {"subscriptionSlug": _slug("sub_"), "spvSlug": _slug("veh_"), "personId": _slug("psn_"),
            "partnerInvestorId": f"acme-inv-{secrets.randbelow(9000) + 1000}"}


def _file_url(kind: str, slug: str) -> str:
    return f"https://files.zestequity.com/{kind}/{slug}.pdf?expires=3600&signature={secrets.token_hex(16)}"


def event_data(event_type: str, at: str) -> dict[str, Any]:
    """A realistic ``data`` for each of the nine types, with exactly the documented fields."""
    if event_type.startswith("spv_request."):
        status = {"created": "pending-review", "completed": "approved"}.get(event_type.split(".")[1])
        return _spv_request(status or event_type.split(".")[1], at)
    if event_type == "investor.created":
        return {"partnerInvestorId": f"acme-inv-{secrets.randbelow(9000) + 1000}", "zestPersonId": _slug("psn_"),
                "email": "ada.lovelace@example.com", "firstName": "Ada", "lastName": "Lovelace",
                "kycManagedBy": "partner"}
    holder = _holder()
    if event_type == "subscription.created":
        del holder["partnerInvestorId"]  # not part of this event's payload
        return {**holder, "partnerSubscriptionId": f"acme-sub-{secrets.randbelow(9000) + 1000}",
                "lumpSum": {"currency": "USD", "value": "50000.00"}, "shareClassSlug": "sc_classA",
                "status": "pending"}
    if event_type == "signed_subscription_form.uploaded":
        return {**holder, "subscriptionFormUrl": _file_url("forms", holder["subscriptionSlug"]), "uploadedAt": at}
    if event_type == "funding_receipt.uploaded":
        return {**holder, "fundingReceiptUrl": _file_url("fundings", holder["subscriptionSlug"]),
                "amount": "50000.00", "currency": "USD", "wireReference": f"WIRE-{secrets.token_hex(4).upper()}",
                "uploadedAt": at}
    if event_type == "subscription.completed":
        return {**holder, "partnerSubscriptionId": f"acme-sub-{secrets.randbelow(9000) + 1000}",
                "completedAt": at, "status": "completed"}
    return _spv_request("archived", at)  # an event type this API does not have (yet)


def envelope_bytes(event_type: str, clock: WallClock, **data_overrides: Any) -> tuple[str, bytes]:
    """A fresh ``wde_`` + 16 hex eventId and the exact body bytes to sign and send."""
    at = format_instant(datetime.fromtimestamp(clock(), UTC))
    event_id = "wde_" + secrets.token_hex(8)
    data = {**event_data(event_type, at), **data_overrides}
    envelope = {"eventId": event_id, "eventType": event_type, "occurredAt": at, "data": data}
    return event_id, json.dumps(envelope, separators=(",", ":")).encode()


# --- the battery ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One delivery; its signature is computed at the moment of sending."""

    event_id: str
    event_type: str
    body: bytes
    sign: Signer
    note: str = ""  # what is wrong with it on purpose, for the evidence


@dataclass(frozen=True)
class Case:
    name: str
    expect: Expect
    probes: tuple[Probe, ...]
    correct: str  # what a correct receiver does, said on failure


def _signs(secret: str, offset: int = 0, suffix: str = "") -> Signer:
    """``t`` = now + offset, rounded away from now: a stale/future ``t`` stays outside the window even after
    truncation to whole seconds and up to a second of latency."""
    return lambda now, body: header_value(secret, (math.ceil if offset > 0 else math.floor)(now) + offset,
                                          body) + suffix


def _fixed(value: str | None) -> Signer:
    return lambda now, body: value if value is None else value.replace("{now}", str(int(now)))


def _tampered(secret: str, clock: WallClock) -> Probe:
    """A funding receipt whose amount was changed after signing: v1 is a valid signature of other bytes."""
    event_id, signed = envelope_bytes("funding_receipt.uploaded", clock)
    envelope = json.loads(signed)
    envelope["data"]["amount"] = "5000000.00"
    sent = json.dumps(envelope, separators=(",", ":")).encode()
    return Probe(event_id, "funding_receipt.uploaded", sent, lambda now, _: header_value(secret, int(now), signed),
                 "v1 signs the same envelope with amount 50000.00")


def battery(secret: str, clock: WallClock = time.time) -> list[Case]:
    """Every case, in sending order: the nine valid types first, so an unreachable endpoint shows at once."""
    def probe(sign: Signer, event_type: str = "spv_request.created", note: str = "") -> tuple[Probe, ...]:
        event_id, body = envelope_bytes(event_type, clock)
        return (Probe(event_id, event_type, body, sign, note),)

    valid = _signs(secret)
    reject = "verifies the HMAC-SHA256 of 't.' + the raw body with its secret, in constant time, and answers 4xx"
    stale = f"rejects a t more than {WINDOW_S} s from its clock (replay protection) with 4xx"
    cases = [Case(f"valid_event[{kind}]", "2xx", probe(valid, kind),
                  f"verifies the signature and acknowledges a valid {kind} with 2xx within the timeout")
             for kind in EVENT_TYPES]
    cases += [
        Case("tampered_body", "4xx", (_tampered(secret, clock),), reject + " over the body it actually received"),
        Case("wrong_secret", "4xx", probe(_signs("whsec_" + secrets.token_hex(32)), note="signed with another "
                                          "whsec_ secret"), reject),
        Case("missing_signature", "4xx", probe(_fixed(None)), f"rejects a delivery without {HEADER} with 4xx"),
        Case("malformed_signature[garbage]", "4xx", probe(_fixed("garbage")), "rejects an unparsable header with 4xx"),
        Case("malformed_signature[t=abc,v1=zz]", "4xx", probe(_fixed("t=abc,v1=zz")),
             "rejects a non-numeric t and a non-hex v1 with 4xx"),
        Case("malformed_signature[no_v1]", "4xx", probe(_fixed("t={now}")), "rejects a header without v1 with 4xx"),
        Case("stale_timestamp[-301s]", "4xx", probe(_signs(secret, -WINDOW_S - 1), note="t = now - 301 s"), stale),
        Case("stale_timestamp[-3600s]", "4xx", probe(_signs(secret, -3600), note="t = now - 3600 s"), stale),
        Case("future_timestamp[+301s]", "4xx", probe(_signs(secret, WINDOW_S + 1), note="t = now + 301 s"), stale),
        Case("unknown_signature_version[v2]", "2xx", probe(_signs(secret, suffix=",v2=deadbeef")),
             "uses the v1 it knows, skips unknown vN= items, and answers 2xx"),
        Case("duplicate_event_id", "2xx", probe(valid) * 2,
             "acknowledges a redelivered eventId with 2xx (at-least-once delivery) and processes it once"),
        Case("unknown_event_type", "not 5xx", probe(valid, UNKNOWN_EVENT_TYPE),
             "answers an event type it does not know without a server error (2xx to ignore it, or 4xx)"),
    ]
    return cases


# --- sending ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Exchange:
    url: str
    probe: Probe
    headers: dict[str, str]
    status: int | None
    error: str | None
    unreachable: bool
    duration_s: float
    response: str = ""

    def evidence(self) -> str:
        body = self.probe.body
        lines = [f"request: POST {self.url}", *(f"  {k}: {v}" for k, v in self.headers.items()),
                 f"  body ({len(body)} bytes): {_excerpt(body)}"]
        if self.probe.note:
            lines.append(f"  on purpose: {self.probe.note}")
        took = f"in {self.duration_s * 1000:.1f} ms"
        if self.error is not None:
            return "\n".join([*lines, f"response: none, {self.error} ({took})"])
        return "\n".join([*lines, f"response: {self.status} {took}" + (f": {self.response}" if self.response else "")])


def zest_headers(probe: Probe, now: float) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    signature = probe.sign(now, probe.body)
    if signature is not None:
        headers[HEADER] = signature
    headers.update({"Zest-Event-Id": probe.event_id, "Zest-Event-Type": probe.event_type,
                    "User-Agent": "ZestWebhooks/1.0"})
    return headers


async def send(client: httpx.AsyncClient, url: str, probe: Probe, *, timeout_s: float,
               clock: WallClock = time.time) -> Exchange:
    """One delivery, signed now, bounded by ``timeout_s`` for the whole exchange; never raises on network trouble."""
    headers = zest_headers(probe, clock())
    started = time.perf_counter()
    status, error, unreachable, text = None, None, False, ""
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.post(url, content=probe.body, headers=headers)
        status, text = response.status_code, _excerpt(response.content)
    except TimeoutError:
        error = f"timeout: no complete response within {timeout_s:g} s"
    except httpx.ConnectTimeout:
        error, unreachable = f"connect timeout: no connection within {timeout_s:g} s", True
    except httpx.TimeoutException as exc:
        error = f"timeout ({type(exc).__name__}): no complete response within {timeout_s:g} s"
    except httpx.ConnectError as exc:
        error, unreachable = f"connect error: {str(exc) or type(exc).__name__}", True
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        error, unreachable = f"invalid URL: {exc}", True
    except httpx.TransportError as exc:
        error = f"transport error ({type(exc).__name__}): {str(exc) or 'connection dropped without a response'}"
    return Exchange(url, probe, headers, status, error, unreachable, time.perf_counter() - started, text)


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "...[truncated]"


# --- judging ----------------------------------------------------------------------------------------------------

def problem(expect: Expect, exchange: Exchange) -> str | None:
    """Why this answer is wrong for the expectation, or None when it is right."""
    if exchange.error is not None:
        return exchange.error
    status = exchange.status or 0
    if expect == "2xx" and not 200 <= status < 300:
        return f"answered {status}, expected 2xx"
    if expect == "4xx" and 200 <= status < 300:
        return f"answered {status}: the receiver accepts forged or replayed webhooks"
    if expect == "4xx" and status >= 500:
        return f"answered {status}: a bad signature is the sender's fault, reject it with 4xx, not a server error"
    if expect == "4xx" and not 400 <= status < 500:
        return f"answered {status}, expected 4xx"
    if expect == "not 5xx" and status >= 500:
        return f"answered {status} (server error)"
    return None


def judge(case: Case, exchanges: list[Exchange]) -> CaseResult:
    evidence = "\n".join(exchange.evidence() for exchange in exchanges)
    duration = sum(exchange.duration_s for exchange in exchanges)
    for index, exchange in enumerate(exchanges, start=1):
        wrong = problem(case.expect, exchange)
        if exchange.unreachable:
            return CaseResult(case.name, CLASSNAME, False, f"endpoint unreachable: {exchange.error}", evidence,
                              duration)
        if wrong is not None:
            which = f"delivery {index} of {len(exchanges)}: " if len(exchanges) > 1 else ""
            return CaseResult(case.name, CLASSNAME, False, f"{which}{wrong}; a correct receiver {case.correct}",
                              evidence, duration)
    return CaseResult(case.name, CLASSNAME, True, "", evidence, duration)


# --- the check --------------------------------------------------------------------------------------------------

@dataclass
class ReceiverReport:
    url: str
    cases: list[CaseResult] = field(default_factory=list)
    requests_sent: int = 0

    @property
    def counts(self) -> Counts:
        return count(self.cases)

    @property
    def ok(self) -> bool:
        return self.counts.failed == 0

    @property
    def summary(self) -> str:
        return summary_line(self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "summary": self.summary, "requests_sent": self.requests_sent,
                **asdict(self.counts), "cases": [asdict(case) for case in self.cases]}


async def check_receiver_async(url: str, secret: str, *, timeout_s: float = 10.0, max_requests: int = 40,
                               clock: WallClock = time.time) -> ReceiverReport:
    report = ReceiverReport(url)
    unreachable: tuple[str, Exchange] | None = None  # the case and exchange that found the endpoint unreachable
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False) as client:
        for case in battery(secret, clock):
            if report.requests_sent + len(case.probes) > max_requests:
                report.cases.append(CaseResult(case.name, CLASSNAME, False, f"not sent: the budget of "
                                               f"{max_requests} requests is spent", skipped=True))
                continue
            if unreachable is not None:
                report.cases.append(_not_sent(case, unreachable))
                continue
            exchanges = await _deliver(client, url, case, timeout_s, clock, report)
            report.cases.append(judge(case, exchanges))
            if exchanges[-1].unreachable:
                unreachable = case.name, exchanges[-1]
    return report


def check_receiver(url: str, secret: str, *, timeout_s: float = 10.0, max_requests: int = 40,
                   clock: WallClock = time.time) -> ReceiverReport:
    """Run the battery against ``url``; from synchronous code (use ``check_receiver_async`` inside a loop)."""
    return asyncio.run(check_receiver_async(url, secret, timeout_s=timeout_s, max_requests=max_requests,
                                            clock=clock))


async def _deliver(client: httpx.AsyncClient, url: str, case: Case, timeout_s: float, clock: WallClock,
                   report: ReceiverReport) -> list[Exchange]:
    exchanges: list[Exchange] = []
    for probe in case.probes:
        report.requests_sent += 1
        exchanges.append(await send(client, url, probe, timeout_s=timeout_s, clock=clock))
        if exchanges[-1].unreachable:
            break
    return exchanges


def _not_sent(case: Case, unreachable: tuple[str, Exchange]) -> CaseResult:
    """After a connection failure the rest are not sent: each fails with the evidence of that failure."""
    name, exchange = unreachable
    return CaseResult(case.name, CLASSNAME, False, f"endpoint unreachable: {exchange.error}",
                      f"not sent: the endpoint was unreachable on {name}\n{exchange.evidence()}")
