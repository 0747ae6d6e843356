"""A reference Zest partner integration, written the way the Zest docs advise. Read it as documentation.

What it does right, and where:

- ``Tokens``: one EdDSA assertion (60 s lifetime) exchanged for an access token that is cached and re-used; a new
  assertion is minted only near expiry, or once when the API says the token is no longer valid (401).
- ``Api.write``: one Idempotency-Key per logical write (a v4 UUID made before the first attempt), reused with the
  very same body on every retry.
- ``Api.send``: retries 5xx, 429 (honouring Retry-After), timeouts and dropped connections with exponential backoff
  and jitter (0.25 s, 0.5 s, 1 s, 2 s, 4 s); never retries other 4xx answers.
- ``Receiver``: a webhook endpoint that verifies ``Zest-Signature`` (HMAC-SHA256 over ``t + "." + raw body``,
  constant-time compare, 300 s window), answers 2xx at once and processes in the background, de-duplicating on
  ``eventId`` (deliveries are at-least-once and unordered).
- ``onboard``: investors are answered row by row (always 200): a ``created`` or ``already_exists`` row gives the
  zestPersonId; a failed row with ``retryable: true`` is resubmitted, alone with the other failed ones, as a new
  request (a new Idempotency-Key: the old one would replay the failed answer) after a backoff; a row refused for
  good is set aside for correction and never sent again as it was; only investors with a zestPersonId subscribe.
- ``full_flow``: SPV request -> wait for approval (webhook) -> investors -> subscriptions -> signed form -> funding
  receipt (strictly after the form succeeded) -> wait for ``subscription.completed``.

Configuration is the environment only: ZEST_BASE_URL, ZEST_CLIENT_ID, ZEST_PRIVATE_KEY_FILE, ZEST_AUDIENCE (default:
the base URL), ZEST_WEBHOOK_SECRET, ZEST_WEBHOOK_PORT (the receiver's port on 127.0.0.1, default any free one);
against zest-mock also ZEST_MOCK_URL (registers the receiver, standing in for onboarding, and reports processed
eventIds for the harness) and ZEST_SCENARIO, the path to walk (``flow_for``: a name with ``reject`` ends at the
rejection, ``cancel`` cancels the pending request, ``upload_limits`` first offers files Zest refuses,
``investor_rows`` onboards a batch of eight investors; anything else is the full flow). Needs only the standard
library, httpx and PyJWT. Exit status 0 when the flow went as it should.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt

log = logging.getLogger("reference_partner")
RETRYABLE = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 6
WEBHOOK_WAIT_SECONDS = 60.0
SIGNATURE_TOLERANCE = 300
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SIGNED_FORM = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
RECEIPT = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
UPLOAD_LIMIT = 10 * 1024 * 1024
ATTRIBUTES = {"underlyingCompanySlug": "co_acme", "currency": "USD",
              "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}
ALICE = {"partnerInvestorId": "acme-inv-7341", "email": "alice@example.com", "firstName": "Alice",
         "lastName": "Liddell", "dateOfBirth": "1985-04-12", "countryOfResidence": "AE"}
BATCH = [ALICE, *({"partnerInvestorId": f"acme-inv-{7341 + n}", "email": f"{first.lower()}@example.com",
                   "firstName": first, "lastName": last, "dateOfBirth": f"19{70 + n}-0{n}-1{n}",
                   "countryOfResidence": country}
                  for n, (first, last, country) in enumerate(
                      [("Bob", "Okafor", "NG"), ("Chen", "Wei", "SG"), ("Dana", "Haddad", "AE"),
                       ("Emeka", "Eze", "GB"), ("Farah", "Khan", "PK"), ("Gita", "Rao", "IN"),
                       ("Hugo", "Brandt", "DE")], start=1))]


class FlowError(Exception):
    """The integration met something it cannot carry on from."""


@dataclass(frozen=True)
class Config:
    base_url: str
    client_id: str
    private_key: str
    audience: str
    webhook_secret: str
    mock_url: str | None
    scenario: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        with open(env["ZEST_PRIVATE_KEY_FILE"], encoding="utf-8") as key_file:
            key = key_file.read()
        base = env["ZEST_BASE_URL"].rstrip("/")
        return cls(base, env["ZEST_CLIENT_ID"], key, env.get("ZEST_AUDIENCE") or base, env["ZEST_WEBHOOK_SECRET"],
                   env.get("ZEST_MOCK_URL"), env.get("ZEST_SCENARIO", ""))


# ---- calling the API --------------------------------------------------------------------------------------------


class Tokens:
    """The access token, cached until a minute before it expires."""

    def __init__(self, config: Config, send: Callable[..., httpx.Response]) -> None:
        self.config, self.send = config, send
        self._token: str | None = None
        self._expires = 0.0

    def bearer(self) -> str:
        if self._token is None or time.time() > self._expires - 60:
            self._token, self._expires = self._exchange()
        return self._token

    def invalidate(self) -> None:
        self._token = None

    def _exchange(self) -> tuple[str, float]:
        now = int(time.time())
        claims = {"iss": "https://partner.example.com", "sub": self.config.client_id,
                  "client_id": self.config.client_id, "aud": self.config.audience, "iat": now, "exp": now + 60,
                  "jti": str(uuid.uuid4())}
        assertion = jwt.encode(claims, self.config.private_key, algorithm="EdDSA")
        response = self.send("POST", "/v1/oauth2/tokens", data={"grant_type": GRANT, "assertion": assertion})
        if response.status_code != 201:
            raise FlowError(f"token exchange refused: {response.status_code} {response.text[:300]}")
        body = response.json()
        return str(body["accessToken"]), time.time() + float(body.get("expiresIn", 3600))


class Api:
    def __init__(self, config: Config) -> None:
        self.http = httpx.Client(base_url=config.base_url, timeout=10.0)
        self.tokens = Tokens(config, self.send)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """An authenticated call; a token the API no longer accepts (expired early, revoked) is replaced once."""
        for _ in range(2):
            sent = {**(headers or {}), "Authorization": f"Bearer {self.tokens.bearer()}"}
            response = self.send(method, path, headers=sent, **kwargs)
            if response.status_code != 401:
                break
            self.tokens.invalidate()
        return response

    def write(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        """One logical write: its Idempotency-Key is made once and sent, with the same body, on every retry."""
        return self.call(method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send, retrying what is worth retrying with exponential backoff; other answers are returned as they are."""
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                response = self.http.request(method, path, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if last:
                    raise FlowError(f"{method} {path}: {type(exc).__name__} after {ATTEMPTS} attempts") from exc
                log.info("%s %s: %s, retrying", method, path, type(exc).__name__)
                time.sleep(_backoff(attempt))
                continue
            if not _retryable(response) or last:
                return response
            log.info("%s %s: %s, retrying", method, path, response.status_code)
            time.sleep(max(_backoff(attempt), _retry_after(response)))
        raise AssertionError("unreachable")


def _retryable(response: httpx.Response) -> bool:
    """5xx and 429; and a 409 saying the same Idempotency-Key is still in progress (wait, then resend it)."""
    if response.status_code == 409:
        return "in progress" in response.text
    return response.status_code in RETRYABLE


def _backoff(attempt: int) -> float:
    return min(0.25 * 2**attempt, 4.0) * (1 + 0.25 * random.random())


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "0")), 30.0)
    except ValueError:
        return 0.0


def expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        request = response.request
        raise FlowError(f"{request.method} {request.url.path}: {response.status_code} {response.text[:300]}")
    return response.json()


# ---- receiving webhooks -----------------------------------------------------------------------------------------


def verify_signature(header: str, body: bytes, secret: str, now: float | None = None) -> bool:
    """``t=<unix>,v1=<hex>``: HMAC-SHA256 of ``t + "." + raw body``; any known v1 matches; |now - t| <= 300 s."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key.strip(), []).append(value.strip())
    try:
        stamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - stamp) > SIGNATURE_TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


class Receiver:
    """The webhook endpoint: verify, acknowledge, queue; one worker processes each eventId once."""

    def __init__(self, secret: str, report: Callable[[str], None], port: int = 0) -> None:
        self.secret, self.report = secret, report
        self.events: list[dict[str, Any]] = []  # processed, in processing order
        self._seen: set[str] = set()
        self._last_delivery = time.monotonic()
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/zest/webhooks"
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                          daemon=True), threading.Thread(target=self._work, daemon=True)]
        for thread in self._threads:
            thread.start()

    def drain(self, quiet: float = 0.3, limit: float = 3.0) -> None:
        """Before shutting down, keep answering until no delivery came for ``quiet`` seconds (``limit`` at most):
        a late duplicate must not find the door closed."""
        deadline = time.monotonic() + limit
        with self._changed:
            while (now := time.monotonic()) < deadline and (idle := now - self._last_delivery) < quiet:
                self._changed.wait(quiet - idle)

    def close(self) -> None:
        self._inbox.put(None)
        self._inbox.join()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, match: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first processed event ``match`` accepts, waiting up to a minute of wall time for it."""
        with self._changed:
            found = self._changed.wait_for(lambda: next((e for e in self.events if match(e)), None),
                                           timeout=WEBHOOK_WAIT_SECONDS)
        if found is None:
            raise FlowError(f"no {what} webhook within {WEBHOOK_WAIT_SECONDS:g} s")
        return found

    def accept(self, signature: str, body: bytes) -> int:
        """The status to answer a delivery with; a verified one is queued for processing."""
        with self._changed:
            self._last_delivery = time.monotonic()
        if not verify_signature(signature, body, self.secret):
            return 400
        try:
            event = json.loads(body)
            event_id = str(event["eventId"])
        except (ValueError, KeyError, TypeError):
            return 400
        self._inbox.put({**event, "eventId": event_id})
        return 200

    def _work(self) -> None:
        while (event := self._inbox.get()) is not None:
            try:
                if event["eventId"] not in self._seen:  # at-least-once delivery: process each eventId once
                    self._seen.add(event["eventId"])
                    self.report(event["eventId"])
                    with self._changed:
                        self.events.append(event)
                        self._changed.notify_all()
            finally:
                self._inbox.task_done()
        self._inbox.task_done()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(receiver.accept(self.headers.get("Zest-Signature", ""), body))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _event(event_type: str, key: str, value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("eventType") == event_type and (e.get("data") or {}).get(key) == value


# ---- the flows --------------------------------------------------------------------------------------------------


def create_spv_request(api: Api) -> str:
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": ATTRIBUTES}
    slug = str(expect(api.write("POST", "/v1/spv-requests", body), 201)["spvRequestSlug"])
    log.info("SPV request %s created, waiting for review", slug)
    return slug


def spv_outcome(receiver: Receiver, slug: str) -> dict[str, Any]:
    decided = ("spv_request.completed", "spv_request.rejected", "spv_request.cancelled")
    return receiver.wait_for(lambda e: e.get("eventType") in decided
                             and (e.get("data") or {}).get("spvRequestSlug") == slug, f"decision on {slug}")


def upload(api: Api, base: str, kind: str, name: str, content: bytes, media_type: str,
           data: dict[str, str] | None = None) -> httpx.Response:
    """``kind`` is ``forms`` or ``fundings``; uploads are content-addressed, so a retry resends the same bytes."""
    return api.call("POST", f"{base}/{kind}", files={"file": (name, content, media_type)}, data=data)


def refused(response: httpx.Response, status: int) -> None:
    """A file Zest refuses (413 too large, 415 wrong type) is a user error: report it, never send it again as is."""
    body = expect(response, status)
    log.info("upload refused as expected: %s %s", body.get("code"), body.get("detail"))


def onboard(api: Api, investors: list[dict[str, str]]) -> dict[str, str]:
    """Register ``investors``; returns partnerInvestorId -> zestPersonId for every one Zest registered.

    Each row is answered on its own. A retryable failure is resubmitted (with the other ones, as a new request:
    new key, new body) after a backoff; a row refused for good needs a person to correct it, so it is set aside.
    """
    people: dict[str, str] = {}
    pending = list(investors)
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(_backoff(attempt - 1))
        results = expect(api.write("POST", "/v1/investors", {"investors": pending}), 200)["results"]
        answered = {row["partnerInvestorId"]: row for row in results}
        retry = []
        for investor in pending:
            row = answered[investor["partnerInvestorId"]]
            error = row.get("error") or {}
            if row["status"] in ("created", "already_exists"):
                people[investor["partnerInvestorId"]] = row["zestPersonId"]
            elif error.get("retryable"):
                retry.append(investor)
            else:
                log.warning("investor %s set aside for correction: %s %s %s", investor["partnerInvestorId"],
                            error.get("code"), error.get("field"), error.get("message"))
        if not retry:
            break
        pending = retry
    else:
        still = ", ".join(investor["partnerInvestorId"] for investor in pending)
        raise FlowError(f"investors still failing after {ATTEMPTS} attempts: {still}")
    if not people:
        raise FlowError("no investor could be registered")
    return people


def full_flow(api: Api, receiver: Receiver, *, investors: list[dict[str, str]] | None = None,
              offer_bad_files: bool = False) -> None:
    """The whole flow; ``offer_bad_files`` first offers an 11 MiB scan and a text "receipt" to show the limits."""
    investors = investors or [ALICE]
    slug = create_spv_request(api)
    outcome = spv_outcome(receiver, slug)
    if outcome["eventType"] != "spv_request.completed":
        raise FlowError(f"{slug} ended {outcome['eventType']}: {outcome['data'].get('rejectionReason', '')}")
    spv = expect(api.call("GET", f"/v1/spv-requests/{slug}"), 200)
    vehicle, share_class = spv["materialisedRefs"]["vehicleSlug"], spv["feesAndCarry"]["shareClasses"][0]["slug"]
    people = onboard(api, investors)
    lump_sum = {"currency": "USD", "value": "50000.00"}
    rows = [{"zestPersonId": people[pid], "shareClassSlug": share_class, "lumpSum": lump_sum,
             "partnerSubscriptionId": pid.replace("-inv-", "-sub-")}
            for pid in (investor["partnerInvestorId"] for investor in investors) if pid in people]
    subscribed = expect(api.write("POST", f"/v1/spvs/{vehicle}/subscriptions", {"subscriptions": rows}),
                        201)["results"]
    person, sub = subscribed[0]["personId"], subscribed[0]  # the lead investor's subscription goes on to funding
    base = f"/v1/spvs/{vehicle}/subscription/{person}"
    funding = {"amount": "50000.00", "currency": "USD", "wireReference": "ACME-WIRE-20260507-9921"}
    if offer_bad_files:
        refused(upload(api, base, "forms", "scan.pdf", SIGNED_FORM.ljust(UPLOAD_LIMIT + 1), "application/pdf"), 413)
    expect(upload(api, base, "forms", "signed-form.pdf", SIGNED_FORM, "application/pdf"), 201)
    # the funding receipt goes only now that the signed form is on record
    if offer_bad_files:
        refused(upload(api, base, "fundings", "receipt.txt", b"wire sent", "text/plain", funding), 415)
    expect(upload(api, base, "fundings", "receipt.png", RECEIPT, "image/png", funding), 201)
    log.info("subscription %s funded, waiting for completion", sub["subscriptionSlug"])
    receiver.wait_for(_event("subscription.completed", "subscriptionSlug", sub["subscriptionSlug"]),
                      f"subscription.completed for {sub['subscriptionSlug']}")


def rejection_flow(api: Api, receiver: Receiver) -> None:
    slug = create_spv_request(api)
    outcome = spv_outcome(receiver, slug)
    if outcome["eventType"] != "spv_request.rejected":
        raise FlowError(f"{slug} ended {outcome['eventType']}, expected a rejection")
    log.info("%s rejected: %s; a new request would be needed", slug, outcome["data"].get("rejectionReason"))


def cancellation_flow(api: Api, receiver: Receiver) -> None:
    slug = create_spv_request(api)
    response = api.call("DELETE", f"/v1/spv-requests/{slug}")
    if response.status_code == 409:  # a retried DELETE whose first answer was lost: check where it stands
        response = api.call("GET", f"/v1/spv-requests/{slug}")
    if expect(response, 200)["status"] != "cancelled":
        raise FlowError(f"{slug} is {response.json()['status']}, not cancelled")
    receiver.wait_for(_event("spv_request.cancelled", "spvRequestSlug", slug), f"spv_request.cancelled for {slug}")


def flow_for(scenario: str) -> Callable[[Api, Receiver], None]:
    if "reject" in scenario:
        return rejection_flow
    if "cancel" in scenario:
        return cancellation_flow
    if "upload_limits" in scenario:
        return lambda api, receiver: full_flow(api, receiver, offer_bad_files=True)
    if "investor_rows" in scenario:
        return lambda api, receiver: full_flow(api, receiver, investors=BATCH)
    return full_flow


# ---- wiring -----------------------------------------------------------------------------------------------------


def reporter(config: Config) -> Callable[[str], None]:
    """Tell zest-mock which eventIds were processed (how the harness checks de-duplication); a no-op elsewhere."""
    if not config.mock_url:
        return lambda event_id: None
    url = f"{config.mock_url.rstrip('/')}/_mock/expectations/processed"

    def report(event_id: str) -> None:
        try:
            httpx.post(url, json={"eventIds": [event_id]}, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("could not report %s as processed: %s", event_id, exc)

    return report


def register_endpoint(config: Config, url: str) -> None:
    """Onboarding gives Zest the webhook URL; against zest-mock, its control plane stands in for that."""
    if config.mock_url:
        httpx.put(f"{config.mock_url.rstrip('/')}/_mock/webhooks/endpoint", json={"url": url},
                  timeout=10).raise_for_status()


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    config = Config.from_env(env)
    receiver = Receiver(config.webhook_secret, reporter(config), int(env.get("ZEST_WEBHOOK_PORT") or 0))
    api = Api(config)
    try:
        register_endpoint(config, receiver.url)
        flow_for(config.scenario)(api, receiver)
        receiver.drain()
    except FlowError as exc:
        log.error("flow failed: %s", exc)
        return 1
    finally:
        api.close()
        receiver.close()
    log.info("flow complete")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="reference partner: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.exit(main())
