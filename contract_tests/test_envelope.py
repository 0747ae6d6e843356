"""Every non-2xx leaves in the Zest envelope: unknown routes, wrong methods, bad JSON, wrong content types."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient


def assert_envelope(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    uuid.UUID(body["errorId"])
    return dict(body)


def test_unknown_route_is_404_envelope(client: TestClient) -> None:
    assert_envelope(client.get("/v1/nothing-here"), 404, "not_found")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/v1/spv-requests", {"GET", "HEAD", "POST"}),
    ("PATCH", "/v1/spv-requests/svr_x", {"GET", "HEAD", "DELETE"}),
    ("TRACE", "/v1/investors", {"POST"}),
    ("DELETE", "/public/hc", {"GET", "HEAD"}),
])
def test_wrong_method_is_405_with_allow(client: TestClient, method: str, path: str, allow: set[str]) -> None:
    response = client.request(method, path)
    assert_envelope(response, 405, "invalid_request")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allow


def test_malformed_json_is_invalid_request(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/investors", content=b'{"investors": [', headers={**headers,
                           "Content-Type": "application/json"})
    body = assert_envelope(response, 400, "invalid_request")
    assert "malformed JSON" in body["detail"]


def test_non_json_content_type_is_invalid_request(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/investors", content=b'{"investors": []}', headers={**headers,
                           "Content-Type": "text/plain"})
    assert_envelope(response, 400, "invalid_request")


def test_deeply_nested_json_is_a_clear_400(client: TestClient, headers: dict[str, str]) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = client.post("/v1/investors", content=deep, headers={**headers, "Content-Type": "application/json"})
    assert_envelope(response, 400, "invalid_request")


def test_huge_json_body_is_413(client: TestClient, headers: dict[str, str]) -> None:
    big = b'{"investors": ["' + b"x" * (2 * 1024 * 1024) + b'"]}'
    response = client.post("/v1/investors", content=big, headers={**headers, "Content-Type": "application/json"})
    assert_envelope(response, 413, "payload_too_large")


def test_system_endpoints(client: TestClient) -> None:
    assert client.get("/").json()["service"] == "zest-partner-api-mock"
    assert client.get("/public/hc").json() == {"status": "ok"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
    assert "createSpvRequest" in docs.text and "uploadFundingReceipt" in docs.text  # readable without the CDN
    control = client.get("/_mock/docs")
    assert "advanceClock" in control.text and "/_mock/openapi.json" in control.text
