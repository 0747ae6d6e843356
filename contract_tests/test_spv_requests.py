"""SPV requests: create, read, list, cancel, admin review, and the events each change stores."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import SAMPLE_ATTRIBUTES, START, bearer, create_spv_request, events, runtime

from mock_server.domain import partners


def test_create_is_201_pending_review_and_readable_at_once(client: TestClient, headers: dict[str, str]) -> None:
    response = create_spv_request(client, headers)
    assert response.status_code == 201
    body = response.json()
    assert body["spvRequestSlug"].startswith("svr_")
    assert body["status"] == "pending-review"
    assert body["tenantSlug"] == "acme" and body["clientId"] == "dev-partner"
    assert body["attributes"] == SAMPLE_ATTRIBUTES
    assert body["createdAt"] == body["updatedAt"] == START
    assert "feesAndCarry" not in body and "materialisedRefs" not in body
    assert client.get(f"/v1/spv-requests/{body['spvRequestSlug']}", headers=headers).json() == body


def test_create_stores_spv_request_created(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    (event,) = events(app)
    assert event["eventType"] == "spv_request.created" and event["occurredAt"] == START
    assert event["eventId"].startswith("wde_") and len(event["eventId"]) == 20
    assert event["data"] == {"spvRequestSlug": slug, "templateId": "syndicate_secondary", "templateVersion": "1.0.0",
                             "tenantSlug": "acme", "attributes": SAMPLE_ATTRIBUTES, "status": "pending-review"}


def test_missing_idempotency_key_is_400(client: TestClient, headers: dict[str, str]) -> None:
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}
    response = client.post("/v1/spv-requests", json=body, headers=headers)
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"
    assert "Idempotency-Key" in response.json()["detail"]


def test_unknown_template_is_404(client: TestClient, headers: dict[str, str]) -> None:
    body = {"templateId": "nope", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}
    response = client.post("/v1/spv-requests", json=body, headers={**headers, "Idempotency-Key": "k-404"})
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_bad_attributes_report_every_failure(client: TestClient, headers: dict[str, str]) -> None:
    attributes = {**SAMPLE_ATTRIBUTES, "currency": "usd", "colour": "red",
                  "shareClasses": [{"name": "A", "managementFeePercent": "2.0", "carryPercent": "-1.0"}]}
    response = create_spv_request(client, headers, attributes)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    by_path = {e["field"]: e for e in body["validationErrors"]}
    carry = by_path["attributes.shareClasses[0].carryPercent"]
    assert carry["code"] == "min_value" and carry["value"] == "-1.0" and carry["attribute"] == carry["field"]
    assert by_path["attributes.colour"]["code"] == "unknown_attribute"
    assert "attributes.currency" in by_path


def test_envelope_field_errors_for_the_fixed_body(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/spv-requests", json={"templateId": 7, "attributes": {}, "extra": 1},
                           headers={**headers, "Idempotency-Key": "k-body"})
    assert response.status_code == 400
    codes = {e["field"]: e["code"] for e in response.json()["validationErrors"]}
    assert codes == {"templateId": "type", "templateVersion": "required"}  # `extra` is ignored, as Zest does
    assert '"extra"' in response.headers["Zest-Mock-Warning"]


def test_list_is_scoped_paginated_and_filtered(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    slugs = [create_spv_request(client, headers).json()["spvRequestSlug"] for _ in range(3)]
    rt = runtime(app)
    partners.register(rt.store, rt.clock, rt.ids, client_id="other-co", tenant_slug="other")
    create_spv_request(client, bearer(app, "other-co"))
    client.delete(f"/v1/spv-requests/{slugs[0]}", headers=headers)
    page = client.get("/v1/spv-requests", params={"perPage": 2, "page": 1}, headers=headers).json()
    assert page["count"] == 3 and page["skip"] == 0 and page["limit"] == 2
    assert [d["spvRequestSlug"] for d in page["documents"]] == [slugs[2], slugs[1]]  # newest first
    page2 = client.get("/v1/spv-requests", params={"perPage": 2, "page": 2}, headers=headers).json()
    assert [d["spvRequestSlug"] for d in page2["documents"]] == [slugs[0]] and page2["skip"] == 2
    past = client.get("/v1/spv-requests", params={"page": 9}, headers=headers).json()
    assert past["documents"] == [] and past["count"] == 3
    cancelled = client.get("/v1/spv-requests", params={"status": "cancelled"}, headers=headers).json()
    assert [d["spvRequestSlug"] for d in cancelled["documents"]] == [slugs[0]]


@pytest.mark.parametrize("query", [{"perPage": "0"}, {"perPage": "101"}, {"page": "0"}, {"page": "x"},
                                   {"status": "done"}])
def test_bad_list_query_is_400(client: TestClient, headers: dict[str, str], query: dict[str, str]) -> None:
    response = client.get("/v1/spv-requests", params=query, headers=headers)
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_other_partners_requests_are_404(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    rt = runtime(app)
    partners.register(rt.store, rt.clock, rt.ids, client_id="other-co", tenant_slug="other")
    other = bearer(app, "other-co")
    assert client.get(f"/v1/spv-requests/{slug}", headers=other).status_code == 404
    assert client.delete(f"/v1/spv-requests/{slug}", headers=other).status_code == 404
    assert client.get(f"/v1/spv-requests/{slug}", headers=headers).json()["status"] == "pending-review"


def test_cancel_only_from_pending_review(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    response = client.delete(f"/v1/spv-requests/{slug}", headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["cancelledAt"] == START
    again = client.delete(f"/v1/spv-requests/{slug}", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    cancelled = events(app, "spv_request.cancelled")
    assert len(cancelled) == 1 and cancelled[0]["data"]["cancelledAt"] == START
    assert cancelled[0]["data"]["status"] == "cancelled"


def test_approve_materialises_the_spv(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    approved = client.post(f"/_mock/admin/spv-requests/{slug}/approve")
    assert approved.status_code == 200
    body = approved.json()
    assert body["status"] == "approved" and body["approvedAt"] == START
    refs = body["materialisedRefs"]
    assert [refs[k][:4] for k in ("opportunitySlug", "vehicleSlug")] == ["opp_", "veh_"]
    assert refs["spSlug"].startswith("sp_") and refs["spcSlug"].startswith("spc_")
    assert body["feesAndCarry"] == {"shareClasses": [
        {"name": "Class A", "slug": "sc_classA", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}
    (event,) = events(app, "spv_request.completed")
    assert event["data"]["materialisedRefs"] == refs and event["data"]["approvedAt"] == START
    assert event["data"]["status"] == "approved"
    assert client.post(f"/_mock/admin/spv-requests/{slug}/approve").status_code == 409
    assert client.delete(f"/v1/spv-requests/{slug}", headers=headers).status_code == 409


def test_reject_records_the_reason(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    response = client.post(f"/_mock/admin/spv-requests/{slug}/reject", json={"reason": "KYC incomplete"})
    assert response.status_code == 200
    assert response.json()["status"] == "rejected" and response.json()["rejectionReason"] == "KYC incomplete"
    (event,) = events(app, "spv_request.rejected")
    assert event["data"]["rejectionReason"] == "KYC incomplete" and event["data"]["rejectedAt"] == START
    assert client.post(f"/_mock/admin/spv-requests/{slug}/reject", json={"reason": "x"}).status_code == 409
    bad = client.post(f"/_mock/admin/spv-requests/{slug}/reject", json={})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"
