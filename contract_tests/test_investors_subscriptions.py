"""Investor bulk onboarding (per-row results) and subscription creation (atomic, on an approved SPV)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import START, approved_spv, bearer, events, investor, runtime, subscription

from mock_server.domain import partners

ALICE = {"partnerInvestorId": "acme-inv-7341", "email": "alice@example.com", "firstName": "Alice",
         "lastName": "Liddell", "dateOfBirth": "1985-04-12", "countryOfResidence": "AE"}


def post_investors(client: TestClient, headers: dict[str, str], rows: list[Any]) -> Any:
    return client.post("/v1/investors", json={"investors": rows}, headers=headers)


def test_bulk_is_200_with_a_result_per_row(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    rows = [ALICE, {**ALICE, "partnerInvestorId": "bad", "email": "nope"}, ALICE, "not an object",
            {**ALICE, "partnerInvestorId": "bob", "dateOfBirth": "1985-02-30"}]
    response = post_investors(client, headers, rows)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "failed", "failed", "failed", "failed"]
    assert results[0]["zestPersonId"].startswith("psn_") and "error" not in results[0]
    assert results[1]["error"] == {"code": "validation_error", "field": "investors[1].email",
                                   "message": results[1]["error"]["message"], "retryable": False}
    assert results[2]["error"]["code"] == "duplicate_in_batch"
    assert results[3]["partnerInvestorId"] == "" and results[3]["error"]["field"] == "investors[3]"
    assert results[4]["error"]["field"] == "investors[4].dateOfBirth"
    (event,) = events(app, "investor.created")
    assert event["data"] == {"partnerInvestorId": "acme-inv-7341", "zestPersonId": results[0]["zestPersonId"],
                             "email": "alice@example.com", "firstName": "Alice", "lastName": "Liddell",
                             "kycManagedBy": "partner"}


def test_known_partner_investor_id_is_already_exists_unchanged(app: Starlette, client: TestClient,
                                                                headers: dict[str, str]) -> None:
    first = post_investors(client, headers, [ALICE]).json()["results"][0]
    again = post_investors(client, headers, [{**ALICE, "firstName": "Changed"}]).json()["results"][0]
    assert again == {"partnerInvestorId": "acme-inv-7341", "status": "already_exists",
                     "zestPersonId": first["zestPersonId"]}
    stored = runtime(app).store.one("SELECT first_name FROM investors")
    assert stored == {"first_name": "Alice"} and len(events(app, "investor.created")) == 1


def test_envelope_problems_fail_the_request(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/v1/investors", json={"rows": []}, headers=headers).status_code == 400
    assert client.post("/v1/investors", json=[ALICE], headers=headers).status_code == 400
    too_many = post_investors(client, headers, [ALICE] * 501)
    assert too_many.status_code == 400 and too_many.json()["code"] == "validation_error"


def test_subscription_created_pending_with_event(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    vehicle, person, slug = subscription(client, headers)
    (event,) = events(app, "subscription.created")
    assert event["occurredAt"] == START
    assert event["data"] == {"subscriptionSlug": slug, "spvSlug": vehicle, "personId": person,
                             "partnerSubscriptionId": "acme-sub-1",
                             "lumpSum": {"currency": "USD", "value": "50000.00"},
                             "shareClassSlug": "sc_classA", "status": "pending"}


def _row(person: str, **overrides: Any) -> dict[str, Any]:
    return {"zestPersonId": person, "lumpSum": {"currency": "USD", "value": "1000.00"},
            "shareClassSlug": "sc_classA", **overrides}


def test_subscription_rules(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    vehicle = approved_spv(client, headers)["materialisedRefs"]["vehicleSlug"]
    person = investor(client, headers)
    url = f"/v1/spvs/{vehicle}/subscriptions"

    def post(*rows: dict[str, Any]) -> Any:
        return client.post(url, json={"subscriptions": list(rows)}, headers=headers)

    assert client.post("/v1/spvs/veh_nope/subscriptions", json={"subscriptions": [_row(person)]},
                       headers=headers).status_code == 404
    assert post(_row("psn_nobody")).status_code == 404
    wrong = post(_row(person, shareClassSlug="sc_other", lumpSum={"currency": "EUR", "value": "1.00"}))
    assert wrong.status_code == 400
    assert {e["code"] for e in wrong.json()["validationErrors"]} == {"enum", "currency_mismatch"}
    malformed = post(_row(person, lumpSum={"currency": "USD", "value": "ten"}))
    assert malformed.json()["validationErrors"][0]["field"] == "subscriptions[0].lumpSum.value"
    assert post(_row(person), _row(person)).status_code == 409
    assert post(_row(person)).status_code == 201
    duplicate = post(_row(person))
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "conflict"
    assert len(events(app, "subscription.created")) == 1


def test_subscriptions_on_another_partners_spv_are_404(app: Starlette, client: TestClient,
                                                       headers: dict[str, str]) -> None:
    vehicle = approved_spv(client, headers)["materialisedRefs"]["vehicleSlug"]
    rt = runtime(app)
    partners.register(rt.store, rt.clock, rt.ids, client_id="other-co", tenant_slug="other")
    other = bearer(app, "other-co")
    person = investor(client, other, "their-inv")
    response = client.post(f"/v1/spvs/{vehicle}/subscriptions", json={"subscriptions": [_row(person)]},
                           headers=other)
    assert response.status_code == 404


def test_complete_requires_a_funding_receipt(client: TestClient, headers: dict[str, str]) -> None:
    _, _, slug = subscription(client, headers)
    response = client.post(f"/_mock/admin/subscriptions/{slug}/complete")
    assert response.status_code == 409 and "funding" in response.json()["detail"]
    assert client.post("/_mock/admin/subscriptions/sub_nope/complete").status_code == 404
