"""Webhook delivery: signatures, the production retry schedule on simulated time, dead letter, redelivery,
parked events, the admin policy and the reconciler, and restart in the middle of a retry chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from receiver import Receiver, verify
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import (
    SAMPLE_ATTRIBUTES,
    START,
    at,
    bearer,
    create_spv_request,
    live_server,
    settings,
    subscription,
)

from mock_server.app import create_app
from mock_server.clock import format_instant

SECRET = "whsec_" + "ab" * 32
HANG_GUARD_S = 30.0
OFFSETS = [0, 30, 330, 2130, 9330, 52530]  # +0, +30 s, +5 min, +30 min, +2 h, +12 h (cumulative)


def point_at(client: TestClient, receiver: Receiver) -> None:
    response = client.put("/_mock/webhooks/endpoint", json={"url": receiver.url, "secret": SECRET})
    assert response.status_code == 200, response.text


def advance(client: TestClient, seconds: float) -> dict[str, Any]:
    response = client.post("/_mock/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return dict(response.json())


def attempts(client: TestClient) -> list[dict[str, Any]]:
    return list(client.get("/_mock/webhooks/deliveries").json()["items"])


def test_delivery_is_signed_and_verifies_independently(client: TestClient, headers: dict[str, str],
                                                       receiver: Receiver) -> None:
    point_at(client, receiver)
    create_spv_request(client, headers)
    advance(client, 0)
    (delivery,) = receiver.deliveries
    assert delivery.headers["content-type"] == "application/json"
    assert verify(delivery.headers["zest-signature"], delivery.body, SECRET)
    assert not verify(delivery.headers["zest-signature"], delivery.body, "whsec_wrong")
    assert not verify(delivery.headers["zest-signature"], delivery.body + b" ", SECRET)
    body = receiver.bodies()[0]
    assert body["eventType"] == "spv_request.created" and body["occurredAt"] == START
    assert delivery.headers["zest-event-id"] == body["eventId"]
    assert attempts(client)[0]["outcome"] == "delivered" and attempts(client)[0]["statusCode"] == 200


def _stamp(signature: str) -> int:
    return int(dict(part.split("=", 1) for part in signature.split(","))["t"])


def test_full_failing_chain_then_dead_then_redeliver(receiver: Receiver) -> None:
    receiver.status = 500
    app = create_app(settings(sign_with_simulated_time=True))  # each attempt's t is its own simulated instant
    with TestClient(app) as client:
        point_at(client, receiver)
        create_spv_request(client, bearer(app))
        summary = advance(client, 15 * 3600)
        chain = attempts(client)
        assert [int((at(a["at"]) - at(START)).total_seconds()) for a in chain] == OFFSETS
        assert [a["statusCode"] for a in chain] == [500] * 6 and chain[-1]["nextAttemptAt"] is None
        assert [a["outcome"] for a in chain] == ["failed"] * 6
        # Attempt 1 may already have run in the background (jobs due now run promptly); the rest ran in the advance.
        assert summary["count"] in (5, 6)
        bodies = {d.body for d in receiver.deliveries}
        stamps = [_stamp(d.headers["zest-signature"]) for d in receiver.deliveries]
        assert len(bodies) == 1  # identical bytes on every attempt...
        assert stamps == [int(at(START).timestamp()) + offset for offset in OFFSETS]  # ...each signed afresh
        assert all(verify(d.headers["zest-signature"], d.body, SECRET, now=stamp)
                   for d, stamp in zip(receiver.deliveries, stamps, strict=True))
        _redeliver_the_dead(client, receiver, bodies)


def _redeliver_the_dead(client: TestClient, receiver: Receiver, bodies: set[bytes]) -> None:
    (dead,) = client.get("/_mock/webhooks/dead-letter").json()["items"]
    assert dead["attempts"] == 6 and dead["status"] == "dead"
    receiver.status = 204
    again = client.post(f"/_mock/webhooks/events/{dead['eventId']}/redeliver")
    assert again.status_code == 202 and again.json()["deliveryId"] != dead["deliveryId"]
    advance(client, 0)
    assert receiver.deliveries[-1].body in bodies and attempts(client)[-1]["outcome"] == "delivered"
    assert receiver.bodies()[-1]["eventId"] == dead["eventId"]


def test_refused_connection_and_redirect_are_failures(client: TestClient, headers: dict[str, str],
                                                      receiver: Receiver) -> None:
    receiver.status = 302
    point_at(client, receiver)
    create_spv_request(client, headers)
    advance(client, 0)
    client.put("/_mock/webhooks/endpoint", json={"url": "http://127.0.0.1:9/nothing"})
    advance(client, 30)
    first, second = attempts(client)
    assert (first["statusCode"], first["outcome"]) == (302, "failed")
    assert (second["statusCode"], second["error"], second["outcome"]) == (None, "connect_error", "failed")


def _eventually(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {HANG_GUARD_S} s (hang guard)"
        time.sleep(0.01)  # polling another thread's progress


def test_the_api_answers_while_a_delivery_hangs(receiver: Receiver) -> None:
    receiver.gate = threading.Event()
    app = create_app(settings(webhook_timeout_seconds=HANG_GUARD_S))
    try:
        with TestClient(app) as client:
            point_at(client, receiver)
            create_spv_request(client, bearer(app))
            _eventually(lambda: receiver.deliveries, "the delivery reaching the receiver")
            for _ in range(5):
                assert client.get("/public/hc").status_code == 200
            assert attempts(client) == []  # all five answered while the delivery was still in the receiver
            receiver.gate.set()
            _eventually(lambda: attempts(client), "the attempt to be recorded")
            assert attempts(client)[0]["outcome"] == "delivered"
    finally:
        receiver.gate.set()


def test_a_hanging_receiver_is_cut_at_the_deadline(receiver: Receiver) -> None:
    receiver.gate = threading.Event()  # never set before the attempt ends: only the mock's deadline can end it
    app = create_app(settings(webhook_timeout_seconds=0.3))
    try:
        with TestClient(app) as client:
            point_at(client, receiver)
            create_spv_request(client, bearer(app))
            advance(client, 0)
            _eventually(lambda: attempts(client), "the attempt to be recorded")
            (attempt,) = attempts(client)
            assert attempt["error"] == "timeout" and attempt["outcome"] == "failed"
            assert attempt["durationMs"] >= 290 and not receiver.gate.is_set()  # the mock's own measurement
    finally:
        receiver.gate.set()


def test_events_without_endpoint_are_kept_then_delivered(client: TestClient, headers: dict[str, str],
                                                         receiver: Receiver) -> None:
    create_spv_request(client, headers)
    advance(client, 3600)
    assert attempts(client) == [] and receiver.deliveries == []
    point_at(client, receiver)
    advance(client, 0)
    assert [b["eventType"] for b in receiver.bodies()] == ["spv_request.created"]


def test_policy_approves_after_delay_on_simulated_time(app: Starlette, client: TestClient, headers: dict[str, str],
                                                       receiver: Receiver) -> None:
    point_at(client, receiver)
    policy = {"spvReview": {"decision": "approve", "after": 7200}}
    assert client.put("/_mock/admin/policy", json=policy).status_code == 200
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    advance(client, 7199)
    assert client.get(f"/v1/spv-requests/{slug}", headers=bearer(app)).json()["status"] == "pending-review"
    advance(client, 1)
    body = client.get(f"/v1/spv-requests/{slug}", headers=bearer(app)).json()
    assert body["status"] == "approved"
    assert body["approvedAt"] == format_instant(at(START).replace(hour=14))
    assert [b["eventType"] for b in receiver.bodies()] == ["spv_request.created", "spv_request.completed"]


def test_policy_rejects_with_reason(client: TestClient, headers: dict[str, str]) -> None:
    client.put("/_mock/admin/policy", json={"spvReview": {"decision": "reject", "after": 60, "reason": "No KYC"}})
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    advance(client, 60)
    body = client.get(f"/v1/spv-requests/{slug}", headers=headers).json()
    assert body["status"] == "rejected" and body["rejectionReason"] == "No KYC"


def test_bad_policy_and_backwards_clock_are_400(client: TestClient) -> None:
    assert client.put("/_mock/admin/policy", json={"spvReview": {"decision": "maybe"}}).status_code == 400
    assert client.put("/_mock/admin/policy", json={"spvReview": {"after": -1}}).status_code == 400
    back = client.post("/_mock/clock/advance", json={"to": "2020-01-01T00:00:00Z"})
    assert back.status_code == 400 and back.json()["code"] == "invalid_request"
    assert client.post("/_mock/clock/advance", json={"seconds": 1, "to": START}).status_code == 400
    assert client.post("/_mock/clock/advance", json={"seconds": -5}).status_code == 400


def test_clock_show_advance_to_and_mode(client: TestClient) -> None:
    assert client.get("/_mock/clock").json() == {"now": START, "mode": "manual", "scale": 1.0}
    result = client.post("/_mock/clock/advance", json={"to": "2026-05-07T13:00:00Z"}).json()
    assert result["from"] == START and result["to"] == "2026-05-07T13:00:00.000Z"
    scaled = client.put("/_mock/clock", json={"mode": "scaled", "scale": 60}).json()
    assert scaled["mode"] == "scaled" and scaled["scale"] == 60
    assert client.put("/_mock/clock", json={"mode": "sideways"}).status_code == 400


def _fund(client: TestClient, headers: dict[str, str]) -> str:
    vehicle, person, slug = subscription(client, headers)
    base = f"/v1/spvs/{vehicle}/subscription/{person}"
    pdf = Path(__file__).resolve().parent.parent / "fixtures" / "signed-form.pdf"
    assert client.post(f"{base}/forms", files={"file": ("f.pdf", pdf.read_bytes(), "application/pdf")},
                       headers=headers).status_code == 201
    funded = client.post(f"{base}/fundings", files={"file": ("r.pdf", pdf.read_bytes() + b"1", "application/pdf")},
                         data={"amount": "50000.00", "currency": "USD", "wireReference": "W-1"}, headers=headers)
    assert funded.status_code == 201, funded.text
    return slug


def test_reconciler_emits_exactly_one_completion(app: Starlette, client: TestClient,
                                                 headers: dict[str, str]) -> None:
    client.put("/_mock/admin/policy", json={"subscriptionCompletion": {"decision": "complete", "after": 90,
                                                                       "emit": "reconciler"}})
    slug = _fund(client, headers)
    advance(client, 90)
    completed = client.get("/_mock/webhooks/events", params={"eventType": "subscription.completed"}).json()
    assert completed["items"] == []  # completed, but the synchronous emit was skipped
    advance(client, 30)  # the sweep at the next 60 s boundary (T+120 s)
    (event,) = client.get("/_mock/webhooks/events", params={"eventType": "subscription.completed"}).json()["items"]
    assert event["data"]["subscriptionSlug"] == slug
    completed_at = format_instant(at(START) + timedelta(seconds=90))  # the admin's time, not the sweep's
    assert event["occurredAt"] == event["data"]["completedAt"] == completed_at
    advance(client, 3600)
    assert len(client.get("/_mock/webhooks/events", params={"eventType": "subscription.completed"})
               .json()["items"]) == 1
    again = client.post(f"/_mock/admin/subscriptions/{slug}/complete")
    assert again.status_code == 409


def test_restart_mid_chain_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    state = tmp_path / "zest.db"
    receiver.status = 503
    with live_server(lambda url: create_app(settings(state_path=state, public_url=url))) as (url, app):
        httpx.put(f"{url}/_mock/webhooks/endpoint", json={"url": receiver.url, "secret": SECRET})
        create_spv_request_http(url, bearer(app))
        httpx.post(f"{url}/_mock/clock/advance", json={"seconds": 330})  # attempts 1-3 failed
    assert len(receiver.deliveries) == 3
    receiver.status = 200
    with live_server(lambda url: create_app(settings(state_path=state, public_url=url, clock_start=None))) as (
            url, app):
        assert httpx.get(f"{url}/_mock/clock").json()["now"] == "2026-05-07T12:05:30.000Z"
        result = httpx.post(f"{url}/_mock/clock/advance", json={"seconds": 1800}).json()
        assert result["count"] == 1
        items = httpx.get(f"{url}/_mock/webhooks/deliveries").json()["items"]
    assert [a["attempt"] for a in items] == [1, 2, 3, 4] and items[-1]["outcome"] == "delivered"
    assert items[-1]["at"] == "2026-05-07T12:35:30.000Z"
    assert len({d.body for d in receiver.deliveries}) == 1


def create_spv_request_http(url: str, headers: dict[str, str]) -> None:
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}
    response = httpx.post(f"{url}/v1/spv-requests", json=body, headers={**headers, "Idempotency-Key": "r1"})
    assert response.status_code == 201
