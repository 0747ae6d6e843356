"""Fault injection: each action, matching, seeded probability, and webhook chaos, as a partner experiences them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from receiver import Receiver
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import SAMPLE_ATTRIBUTES, bearer, create_spv_request, events, live_server, runtime, settings

from mock_server.app import create_app

SECRET = "whsec_" + "ef" * 32
BODY = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}


def add_fault(client: TestClient | httpx.Client, **rule: Any) -> dict[str, Any]:
    response = client.post("/_mock/faults", json=rule)
    assert response.status_code == 201, response.text
    return dict(response.json())


def spv_count(app: Starlette) -> int:
    row = runtime(app).store.one("SELECT COUNT(*) AS n FROM spv_requests")
    return int(row["n"]) if row else 0


def test_error_answers_the_envelope_without_running_the_handler(app: Starlette, client: TestClient,
                                                                headers: dict[str, str]) -> None:
    add_fault(client, match={"operationId": "createSpvRequest"}, action="error", status=503)
    failed = create_spv_request(client, headers, key="k1")
    assert failed.status_code == 503 and failed.json()["code"] == "service_unavailable"
    assert spv_count(app) == 0 and events(app) == []
    assert create_spv_request(client, headers, key="k1").status_code == 201  # times: 1 by default
    rules = client.get("/_mock/faults").json()["items"]
    assert rules[0]["fired"] == 1 and rules[0]["remaining"] == 0


def test_error_after_commit_creates_then_loses_the_answer(app: Starlette, client: TestClient,
                                                          headers: dict[str, str]) -> None:
    add_fault(client, match={"operationId": "createSpvRequest"}, action="error_after_commit", status=500)
    lost = create_spv_request(client, headers, key="k2")
    assert lost.status_code == 500 and lost.json()["code"] == "internal_error"
    assert spv_count(app) == 1 and len(events(app)) == 1  # the write happened
    retry = create_spv_request(client, headers, key="k2")
    assert retry.status_code == 201 and spv_count(app) == 1 and len(events(app)) == 1
    careless = create_spv_request(client, headers, key="another-key")
    assert careless.status_code == 201 and spv_count(app) == 2  # a new key on retry is a duplicate SPV request


def test_429_with_retry_after_and_matching(client: TestClient, headers: dict[str, str]) -> None:
    add_fault(client, match={"method": "GET", "path": "/v1/spv-requests*", "clientId": "dev-partner"},
              action="error", status=429, retryAfter=2, times=None)
    limited = client.get("/v1/spv-requests", headers=headers)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["code"] == "rate_limited"
    assert client.get("/v1/spv-requests", headers=headers).status_code == 429  # times: null fires always
    assert client.get("/v1/oauth2/info", headers=headers).status_code == 200  # path does not match
    assert create_spv_request(client, headers).status_code == 201  # method does not match
    assert client.delete("/_mock/faults").json() == {"removed": 1}
    assert client.get("/v1/spv-requests", headers=headers).status_code == 200


def test_other_clients_are_not_matched(app: Starlette, client: TestClient) -> None:
    add_fault(client, match={"clientId": "someone-else"}, action="error", status=500, times=None)
    assert client.get("/v1/oauth2/info", headers=bearer(app)).status_code == 200


def test_latency_delays_the_request(client: TestClient, headers: dict[str, str]) -> None:
    add_fault(client, match={"operationId": "getOauth2Info"}, action="latency", latencyMs=120)
    assert client.get("/v1/oauth2/info", headers=headers).status_code == 200
    assert client.get("/v1/oauth2/info", headers=headers).status_code == 200  # times: 1 by default
    delayed, plain = client.get("/_mock/requests", params={"operationId": "getOauth2Info"}).json()["items"]
    assert delayed["fault"].startswith("latency#") and delayed["durationMs"] >= 120  # as the mock measured it
    assert plain["fault"] is None


@pytest.mark.parametrize("rule", [
    {"action": "latency"}, {"action": "error", "status": 302}, {"action": "nope"},
    {"action": "error_after_commit", "status": 409}, {"action": "latency", "latencyMs": 10, "latencyMaxMs": 5},
    {"action": "error", "probability": 0}, {"action": "error", "times": 0}, {"action": "error", "extra": 1},
])
def test_bad_rules_are_400(client: TestClient, rule: dict[str, Any]) -> None:
    response = client.post("/_mock/faults", json=rule)
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


def test_unknown_rule_is_404(client: TestClient) -> None:
    assert client.delete("/_mock/faults/99").status_code == 404
    assert client.delete("/_mock/faults/x").status_code == 400


def _statuses(seed: int) -> list[int]:
    app = create_app(settings(seed=seed))
    with TestClient(app) as client:
        add_fault(client, match={"operationId": "getOauth2Info"}, action="error", status=503, times=None,
                  probability=0.5)
        headers = bearer(app)
        return [client.get("/v1/oauth2/info", headers=headers).status_code for _ in range(24)]


def test_probability_is_seeded() -> None:
    first = _statuses(7)
    assert first == _statuses(7)
    assert set(first) == {200, 503} and first != _statuses(8)


def test_drops_and_timeouts_over_a_real_connection() -> None:
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, app):
        headers = bearer(app)
        mock = httpx.Client(base_url=url)
        add_fault(mock, match={"operationId": "createSpvRequest"}, action="drop_after_commit")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            mock.post("/v1/spv-requests", json=BODY, headers={**headers, "Idempotency-Key": "d1"})
        assert spv_count(app) == 1
        retry = mock.post("/v1/spv-requests", json=BODY, headers={**headers, "Idempotency-Key": "d1"})
        assert retry.status_code == 201 and spv_count(app) == 1

        add_fault(mock, match={"operationId": "createSpvRequest"}, action="drop")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):  # closed, or reset: no answer either way
            mock.post("/v1/spv-requests", json=BODY, headers={**headers, "Idempotency-Key": "d2"})
        assert spv_count(app) == 1

        add_fault(mock, match={"operationId": "createSpvRequest"}, action="timeout", holdSeconds=30)
        with pytest.raises(httpx.ReadTimeout):
            mock.post("/v1/spv-requests", json=BODY, headers={**headers, "Idempotency-Key": "d3"}, timeout=0.3)
        assert spv_count(app) == 1
        assert mock.post("/v1/spv-requests", json=BODY, headers={**headers, "Idempotency-Key": "d3"}).status_code == 201
        mock.close()


def _setup_chaos(client: TestClient, receiver: Receiver, **chaos: Any) -> None:
    assert client.put("/_mock/webhooks/endpoint", json={"url": receiver.url, "secret": SECRET}).status_code == 200
    response = client.put("/_mock/webhooks/chaos/dev-partner", json=chaos)
    assert response.status_code == 200, response.text


def _advance(client: TestClient, seconds: float) -> None:
    assert client.post("/_mock/clock/advance", json={"seconds": seconds}).status_code == 200


def test_duplicate_delivers_each_event_twice(client: TestClient, headers: dict[str, str],
                                             receiver: Receiver) -> None:
    _setup_chaos(client, receiver, duplicate=True)
    create_spv_request(client, headers)
    _advance(client, 0)
    first, second = receiver.deliveries
    assert first.body == second.body
    faults = [a["fault"] for a in client.get("/_mock/webhooks/deliveries").json()["items"]]
    assert sorted(map(str, faults)) == ["None", "duplicate"]


def test_fail_attempts_exercises_the_schedule(client: TestClient, headers: dict[str, str],
                                              receiver: Receiver) -> None:
    _setup_chaos(client, receiver, failAttempts=2)
    create_spv_request(client, headers)
    _advance(client, 29)
    assert receiver.deliveries == []
    _advance(client, 301)
    attempts = client.get("/_mock/webhooks/deliveries").json()["items"]
    assert [(a["attempt"], a["error"], a["fault"]) for a in attempts[:2]] == [
        (1, "injected_failure", "fail_attempts"), (2, "injected_failure", "fail_attempts")]
    assert attempts[2]["outcome"] == "delivered" and attempts[2]["at"] == "2026-05-07T12:05:30.000Z"
    assert len(receiver.deliveries) == 1


def test_reorder_holds_then_delivers_in_a_seeded_shuffle(client: TestClient, headers: dict[str, str],
                                                         receiver: Receiver) -> None:
    _setup_chaos(client, receiver, reorderWindowSeconds=10)
    slugs = [create_spv_request(client, headers).json()["spvRequestSlug"] for _ in range(6)]
    _advance(client, 9)
    assert receiver.deliveries == []
    _advance(client, 1)
    seen = [b["data"]["spvRequestSlug"] for b in receiver.bodies()]
    assert sorted(seen) == sorted(slugs) and seen != slugs
    occurred = [b["occurredAt"] for b in receiver.bodies()]
    assert set(occurred) == {"2026-05-07T12:00:00.000Z"}  # correct occurredAt, whatever the arrival order


def test_tamper_records_how_the_receiver_answered(client: TestClient, headers: dict[str, str],
                                                  receiver: Receiver) -> None:
    receiver.secret = SECRET
    _setup_chaos(client, receiver, tamperShare=1.0, tamperKinds=["bad_signature"])
    create_spv_request(client, headers)
    _advance(client, 0)
    attempts = client.get("/_mock/webhooks/deliveries").json()["items"]
    tampered = [a for a in attempts if a["fault"] == "tamper:bad_signature"]
    assert [(a["statusCode"], a["outcome"]) for a in tampered] == [(400, "tamper_rejected")]
    assert [a["outcome"] for a in attempts if a["fault"] is None] == ["delivered"]


def test_tamper_accepted_by_a_careless_receiver(client: TestClient, headers: dict[str, str],
                                                receiver: Receiver) -> None:
    _setup_chaos(client, receiver, tamperShare=1.0, tamperKinds=["stale_timestamp"])
    create_spv_request(client, headers)
    _advance(client, 0)
    outcomes = [a["outcome"] for a in client.get("/_mock/webhooks/deliveries").json()["items"]]
    assert "tamper_accepted" in outcomes


def test_chaos_validation(client: TestClient) -> None:
    assert client.put("/_mock/webhooks/chaos/dev-partner", json={"failAttempts": 9}).status_code == 400
    assert client.put("/_mock/webhooks/chaos/ghost", json={}).status_code == 404
    assert client.get("/_mock/webhooks/chaos/dev-partner").json()["duplicate"] is False
