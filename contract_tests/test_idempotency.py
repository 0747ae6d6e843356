"""Idempotency-Key: verbatim replay, 409 on another body or while in flight, 24 h on the simulated clock."""

from __future__ import annotations

from datetime import timedelta

from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import SAMPLE_ATTRIBUTES, bearer, create_spv_request, events, runtime

from mock_server.domain import idempotency, partners

BODY = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}


def count(app: Starlette, table: str) -> int:
    row = runtime(app).store.one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


def test_replay_is_verbatim_with_no_new_resource_or_event(app: Starlette, client: TestClient,
                                                          headers: dict[str, str]) -> None:
    first = create_spv_request(client, headers, key="k1")
    runtime(app).clock.set_to(runtime(app).clock.now() + timedelta(hours=1))
    second = create_spv_request(client, bearer(app), key="k1")
    assert second.status_code == 201 and second.content == first.content
    assert count(app, "spv_requests") == 1 and len(events(app)) == 1


def test_key_order_and_whitespace_do_not_change_the_hash(app: Starlette, client: TestClient,
                                                         headers: dict[str, str]) -> None:
    create_spv_request(client, headers, key="k2")
    reordered = (
        '{"attributes": {"shareClasses": [{"carryPercent": "20.0", "managementFeePercent": "2.0", "name": "Class A"}],'
        ' "currency": "USD", "underlyingCompanySlug": "co_acme"}, "templateVersion": "1.0.0",   '
        '"templateId": "syndicate_secondary"}'
    )
    response = client.post("/v1/spv-requests", content=reordered.encode(),
                           headers={**headers, "Idempotency-Key": "k2", "Content-Type": "application/json"})
    assert response.status_code == 201 and count(app, "spv_requests") == 1


def test_same_key_other_body_is_409_and_original_untouched(app: Starlette, client: TestClient,
                                                           headers: dict[str, str]) -> None:
    original = create_spv_request(client, headers, key="k3").json()
    other = create_spv_request(client, headers, {**SAMPLE_ATTRIBUTES, "currency": "EUR"}, key="k3")
    assert other.status_code == 409 and other.json()["code"] == "conflict"
    assert client.get(f"/v1/spv-requests/{original['spvRequestSlug']}", headers=headers).json() == original


def test_key_is_scoped_to_the_client(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    rt = runtime(app)
    partners.register(rt.store, rt.clock, rt.ids, client_id="other-co", tenant_slug="other")
    mine = create_spv_request(client, headers, key="shared")
    theirs = create_spv_request(client, bearer(app, "other-co"), key="shared")
    assert theirs.status_code == 201 and theirs.json()["spvRequestSlug"] != mine.json()["spvRequestSlug"]


def test_key_expires_after_24_hours(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    create_spv_request(client, headers, key="k4")
    rt = runtime(app)
    rt.clock.set_to(rt.clock.now() + timedelta(hours=23, minutes=59))
    assert create_spv_request(client, bearer(app), key="k4").status_code == 201 and count(app, "spv_requests") == 1
    rt.clock.set_to(rt.clock.now() + timedelta(minutes=1))
    assert create_spv_request(client, bearer(app), key="k4").status_code == 201 and count(app, "spv_requests") == 2


def test_errors_are_not_stored_so_a_corrected_retry_works(app: Starlette, client: TestClient,
                                                          headers: dict[str, str]) -> None:
    bad = create_spv_request(client, headers, {**SAMPLE_ATTRIBUTES, "currency": "XXX"}, key="k5")
    assert bad.status_code == 400
    assert create_spv_request(client, headers, key="k5").status_code == 201


def test_duplicate_while_in_flight_is_409_never_a_second_resource(app: Starlette, client: TestClient,
                                                                  headers: dict[str, str]) -> None:
    rt = runtime(app)
    hashed = idempotency.body_hash(BODY)
    assert idempotency.begin(rt.store, rt.clock, 86400, "dev-partner", "k6", hashed) is None  # first call running
    response = create_spv_request(client, headers, key="k6")
    assert response.status_code == 409 and "in progress" in response.json()["detail"]
    assert count(app, "spv_requests") == 0


def test_bad_keys_are_invalid_request(client: TestClient, headers: dict[str, str]) -> None:
    for key in ("   ", "k" * 256):
        response = client.post("/v1/spv-requests", json=BODY, headers={**headers, "Idempotency-Key": key})
        assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_optional_key_on_investors_replays(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    row = {"partnerInvestorId": "p1", "email": "a@example.com", "firstName": "A", "lastName": "B",
           "dateOfBirth": "1990-01-01"}
    first = client.post("/v1/investors", json={"investors": [row]}, headers={**headers, "Idempotency-Key": "i1"})
    second = client.post("/v1/investors", json={"investors": [row]}, headers={**headers, "Idempotency-Key": "i1"})
    assert second.content == first.content and second.json()["results"][0]["status"] == "created"
    third = client.post("/v1/investors", json={"investors": [row]}, headers=headers)
    assert third.json()["results"][0]["status"] == "already_exists"
    assert len(events(app, "investor.created")) == 1
