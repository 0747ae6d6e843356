"""A deliberately careless Zest partner integration: what NOT to do. zest-mock's scenarios exist to catch it.

Its sins, each one caught by a scenario expectation:

- a fresh Idempotency-Key on every attempt, so a retry after a lost answer is a new write
  (``idempotent_retries``; ``no_duplicate_resources`` when the first attempt had committed);
- retries 5xx, 429 and dropped connections at once, in a tight loop (``backoff``);
- uploads the funding receipt before the signed form, and carries on after the 409 (``form_before_funding``);
- when any investor row failed, sends the whole batch again at once, rows Zest refused for good included, unchanged
  (``failed_rows_handled``);
- a webhook receiver that never checks ``Zest-Signature`` (``tampered_rejected``) and processes every delivery,
  duplicates included (``events_processed_once``).

Otherwise it walks the same flow as ``reference_partner.py`` (same environment variables, same ZEST_SCENARIO
paths), so that only those expectations fail. Needs only the standard library, httpx and PyJWT.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt

log = logging.getLogger("careless_partner")
WAIT_SECONDS = 60.0
SIGNED_FORM = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
RECEIPT = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ATTRIBUTES = {"underlyingCompanySlug": "co_acme", "currency": "USD",
              "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}
ALICE = {"partnerInvestorId": "acme-inv-7341", "email": "alice@example.com", "firstName": "Alice",
         "lastName": "Liddell", "dateOfBirth": "1985-04-12", "countryOfResidence": "AE"}
BATCH = [ALICE, *({"partnerInvestorId": f"acme-inv-{7341 + n}", "email": f"investor{n}@example.com",
                   "firstName": "Investor", "lastName": f"Number{n}", "dateOfBirth": f"19{70 + n}-0{n}-1{n}"}
                  for n in range(1, 8))]


class Careless:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        with open(env["ZEST_PRIVATE_KEY_FILE"], encoding="utf-8") as key_file:
            self.key = key_file.read()
        self.http = httpx.Client(base_url=env["ZEST_BASE_URL"], timeout=10.0)
        self.events: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.last_delivery = time.monotonic()

    def token(self) -> str:
        """A brand-new token for every call (wasteful, though not what the scenarios judge)."""
        now, client_id = int(time.time()), self.env["ZEST_CLIENT_ID"]
        claims = {"iss": "https://partner.example.com", "sub": client_id, "client_id": client_id,
                  "aud": self.env.get("ZEST_AUDIENCE") or self.env["ZEST_BASE_URL"], "iat": now, "exp": now + 60}
        assertion = jwt.encode(claims, self.key, algorithm="EdDSA")
        grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
        response = self.hammer(lambda: self.http.post("/v1/oauth2/tokens",
                                                      data={"grant_type": grant, "assertion": assertion}))
        return str(response.json()["accessToken"])

    def call(self, method: str, path: str, *, keyed: bool = False, **kwargs: Any) -> httpx.Response:
        """SIN: a new Idempotency-Key on every attempt, and a write that fails in any way is simply sent again."""
        def send() -> httpx.Response:
            headers = {"Authorization": f"Bearer {self.token()}"}
            if keyed:
                headers["Idempotency-Key"] = str(uuid.uuid4())
            return self.http.request(method, path, headers=headers, **kwargs)

        # A 401 is sent again too: each attempt mints a fresh token, so a token that expired between its minting and
        # its use (the scenario's clock may move meanwhile) never decides a verdict.
        return self.hammer(send, also=(401, 409) if keyed else (401,))

    def hammer(self, send: Callable[[], httpx.Response], also: tuple[int, ...] = ()) -> httpx.Response:
        """SIN: retries 5xx, 429 and dropped connections at once, ten times in a tight loop."""
        response: httpx.Response | None = None
        for _ in range(10):
            try:
                response = send()
            except httpx.TransportError:
                continue
            if response.status_code < 500 and response.status_code != 429 and response.status_code not in also:
                return response
        if response is None:
            raise RuntimeError("the API never answered")
        return response

    def wait_for(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        with self.changed:
            found = self.changed.wait_for(lambda: next((e for e in self.events if match(e)), None),
                                          timeout=WAIT_SECONDS)
        if found is None:
            raise RuntimeError("the webhook never came")
        return found

    def receive(self, body: bytes) -> None:
        """SIN: no signature check, no de-duplication: every delivery is processed."""
        with self.changed:
            self.last_delivery = time.monotonic()
        event = json.loads(body)
        self.report(str(event.get("eventId")))
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def linger(self) -> None:
        """Let the webhooks still on their way land before the receiver goes (0.3 s of quiet, 3 s at most)."""
        deadline = time.monotonic() + 3.0
        with self.changed:
            while (now := time.monotonic()) < deadline and (idle := now - self.last_delivery) < 0.3:
                self.changed.wait(0.3 - idle)

    def report(self, event_id: str) -> None:
        if self.env.get("ZEST_MOCK_URL"):
            httpx.post(f"{self.env['ZEST_MOCK_URL'].rstrip('/')}/_mock/expectations/processed",
                       json={"eventIds": [event_id]}, timeout=10)


def serve_receiver(partner: Careless) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)  # answered before processing, so a busy machine never makes it late
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            partner.receive(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def decided(e: dict[str, Any]) -> bool:
    """SIN (a small one): any decision on any SPV request will do, whichever request it is about."""
    return e.get("eventType") in ("spv_request.completed", "spv_request.rejected", "spv_request.cancelled")


def onboard(partner: Careless, investors: list[dict[str, str]]) -> str:
    """SIN: when any row failed, the whole batch goes again at once, unchanged, refused rows and all (three times)."""
    for _ in range(3):
        results = partner.call("POST", "/v1/investors", keyed=True, json={"investors": investors}).json()["results"]
        if all(row["status"] != "failed" for row in results):
            break
    return str(results[0]["zestPersonId"])


def flow(partner: Careless, scenario: str) -> None:
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": ATTRIBUTES}
    slug = partner.call("POST", "/v1/spv-requests", keyed=True, json=body).json()["spvRequestSlug"]
    if "cancel" in scenario:
        partner.call("DELETE", f"/v1/spv-requests/{slug}")
    outcome = partner.wait_for(decided)
    if "reject" in scenario or "cancel" in scenario or outcome["eventType"] != "spv_request.completed":
        return
    slug = outcome["data"]["spvRequestSlug"]
    spv = partner.call("GET", f"/v1/spv-requests/{slug}").json()
    vehicle, share_class = spv["materialisedRefs"]["vehicleSlug"], spv["feesAndCarry"]["shareClasses"][0]["slug"]
    person = onboard(partner, BATCH if "investor_rows" in scenario else [ALICE])
    subscription = {"zestPersonId": person, "shareClassSlug": share_class,
                    "lumpSum": {"currency": "USD", "value": "50000.00"}}
    partner.call("POST", f"/v1/spvs/{vehicle}/subscriptions", keyed=True, json={"subscriptions": [subscription]})
    base = f"/v1/spvs/{vehicle}/subscription/{person}"
    funding = {"amount": "50000.00", "currency": "USD", "wireReference": "W-1"}
    receipt = {"file": ("receipt.png", RECEIPT, "image/png")}
    partner.call("POST", f"{base}/fundings", files=receipt, data=funding)  # SIN: before the form; the 409 is ignored
    partner.call("POST", f"{base}/forms", files={"file": ("signed-form.pdf", SIGNED_FORM, "application/pdf")})
    partner.call("POST", f"{base}/fundings", files=receipt, data=funding)
    partner.wait_for(lambda e: e.get("eventType") == "subscription.completed"
                     and e.get("data", {}).get("personId") == person)


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    partner = Careless(env)
    server = serve_receiver(partner)
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        if env.get("ZEST_MOCK_URL"):
            httpx.put(f"{env['ZEST_MOCK_URL'].rstrip('/')}/_mock/webhooks/endpoint", json={"url": url}, timeout=10)
        flow(partner, env.get("ZEST_SCENARIO", ""))
        partner.linger()
    except Exception as exc:  # careless to the end: one line, no detail
        log.error("something went wrong: %s", exc)
        return 1
    finally:
        partner.http.close()
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="careless partner: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.exit(main())
