"""Unknown request fields and multipart parts: ignored as Zest ignores them, named in ``Zest-Mock-Warning`` and the
journal; refused with today's 400s under ``--strict-fields`` / ``ZEST_MOCK_STRICT_FIELDS``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import PDF, SAMPLE_ATTRIBUTES, approved_spv, bearer, investor, settings, subscription

from mock_server.app import create_app
from mock_server.settings import Settings

ALICE = {"partnerInvestorId": "acme-inv-7341", "email": "alice@example.com", "firstName": "Alice",
         "lastName": "Liddell", "dateOfBirth": "1985-04-12"}
SPV_BODY = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}


@pytest.fixture
def strict() -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(settings(strict_fields=True))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, bearer(app)


def warned(response: Any) -> str:
    return str(response.headers.get("Zest-Mock-Warning", ""))


def test_unknown_top_level_and_row_fields_are_ignored_and_named(client: TestClient, headers: dict[str, str]) -> None:
    body = {"investors": [{**ALICE, "nickname": "Al"}, {**ALICE, "partnerInvestorId": "b", "email": "x"}],
            "batchRef": "b1"}
    response = client.post("/v1/investors", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["created", "failed"]  # a real error still fails
    assert warned(response).startswith('ignored unknown fields: "batchRef", "investors[0].nickname"')
    (entry,) = client.get("/_mock/requests").json()["items"]
    assert entry["ignoredFields"] == ["batchRef", "investors[0].nickname"]


def test_unknown_fields_of_an_spv_request_and_nested_subscription_rows(client: TestClient,
                                                                       headers: dict[str, str]) -> None:
    created = client.post("/v1/spv-requests", json={**SPV_BODY, "batchRef": "b1"},
                          headers={**headers, "Idempotency-Key": "k-1"})
    assert created.status_code == 201 and '"batchRef"' in warned(created)
    spv = approved_spv(client, headers)
    person = investor(client, headers)
    row = {"zestPersonId": person, "shareClassSlug": spv["feesAndCarry"]["shareClasses"][0]["slug"],
           "lumpSum": {"currency": "USD", "value": "100.00", "note": "x"}, "channel": "web"}
    response = client.post(f"/v1/spvs/{spv['materialisedRefs']['vehicleSlug']}/subscriptions",
                           json={"subscriptions": [row]}, headers=headers)
    assert response.status_code == 201, response.text
    assert warned(response).startswith('ignored unknown fields: "subscriptions[0].lumpSum.note", '
                                       '"subscriptions[0].channel"')


def test_an_idempotent_replay_names_the_same_ignored_fields(client: TestClient, headers: dict[str, str]) -> None:
    keyed = {**headers, "Idempotency-Key": "k-replay"}
    first = client.post("/v1/spv-requests", json={**SPV_BODY, "batchRef": "b1"}, headers=keyed)
    again = client.post("/v1/spv-requests", json={**SPV_BODY, "batchRef": "b1"}, headers=keyed)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()  # replayed verbatim
    assert warned(again) == warned(first) and '"batchRef"' in warned(again)
    entries = client.get("/_mock/requests").json()["items"]
    assert [e["ignoredFields"] for e in entries] == [["batchRef"], ["batchRef"]]
    plain = client.post("/v1/spv-requests", json=SPV_BODY, headers={**headers, "Idempotency-Key": "k-plain"})
    replayed = client.post("/v1/spv-requests", json=SPV_BODY, headers={**headers, "Idempotency-Key": "k-plain"})
    assert plain.status_code == replayed.status_code == 201 and not warned(replayed)


def test_unknown_attributes_inside_attributes_stay_refused(client: TestClient, headers: dict[str, str]) -> None:
    body = {**SPV_BODY, "attributes": {**SAMPLE_ATTRIBUTES, "colour": "red"}}
    response = client.post("/v1/spv-requests", json=body, headers={**headers, "Idempotency-Key": "k-2"})
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["validationErrors"]] == [
        ("attributes.colour", "unknown_attribute")]
    assert "Zest-Mock-Warning" not in response.headers


def test_unknown_multipart_parts_are_skipped_and_named(client: TestClient, headers: dict[str, str]) -> None:
    spv_slug, person, _ = subscription(client, headers)
    response = client.post(f"/v1/spvs/{spv_slug}/subscription/{person}/forms", headers=headers,
                           files={"file": ("f.pdf", PDF, "application/pdf"), "note": ("n.txt", b"hi", "text/plain")},
                           data={"memo": "x"})
    assert response.status_code == 201, response.text
    assert sorted(warned(response).split(": ")[1].split(" (")[0].split(", ")) == ['"memo"', '"note"']


def test_a_clean_request_carries_no_warning(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/investors", json={"investors": [ALICE]}, headers=headers)
    assert response.status_code == 200 and "Zest-Mock-Warning" not in response.headers
    assert client.get("/_mock/requests").json()["items"][0]["ignoredFields"] is None


def test_strict_fields_refuses_what_is_otherwise_ignored(strict: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = strict
    top = client.post("/v1/investors", json={"investors": [ALICE], "batchRef": "b1"}, headers=headers)
    assert top.status_code == 400
    assert [(e["field"], e["code"]) for e in top.json()["validationErrors"]] == [("batchRef", "unknown_attribute")]
    row = client.post("/v1/investors", json={"investors": [{**ALICE, "nickname": "Al"}]}, headers=headers)
    assert row.json()["results"][0]["error"]["field"] == "investors[0].nickname"
    spv_slug, person, _ = subscription(client, headers)
    upload = client.post(f"/v1/spvs/{spv_slug}/subscription/{person}/forms", headers=headers,
                         files={"file": ("f.pdf", PDF, "application/pdf")}, data={"memo": "x"})
    assert upload.status_code == 400 and "unknown part 'memo'" in upload.json()["detail"]
    assert not any("Zest-Mock-Warning" in r.headers for r in (top, row, upload))


def test_strict_fields_from_the_environment() -> None:
    assert Settings.from_env({"ZEST_MOCK_STRICT_FIELDS": "1"}).strict_fields is True
    assert Settings.from_env({}).strict_fields is False


def test_the_warning_names_odd_field_names_safely(app: Starlette, client: TestClient, headers: dict[str, str]) -> None:
    odd = {f"x{i}\r\nSet-Cookie: é": 1 for i in range(25)}
    response = client.post("/v1/investors", json={"investors": [ALICE], **odd}, headers=headers)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert warned(response).isascii() and "and 5 more" in warned(response)
    assert len(client.get("/_mock/requests").json()["items"][0]["ignoredFields"]) == 25
