"""A partner's tests against zest-mock through its pytest plugin: copy this file into your suite and adapt it.

``ZestClient`` stands for your own integration code: it signs a JWT-bearer assertion, exchanges it for an access
token, caches it, and retries 5xx answers with the same Idempotency-Key. The tests give it the mock's URL and the
dev partner's credentials from ``zest_mock``, play the Zest admin and move time with ``zest_control``, and watch
webhooks arrive at ``zest_webhook_receiver`` (or at your own app's endpoint: ``zest_mock.point_webhooks_at(url)``).

Run with ``pytest`` once zest-mock is installed; no server to start, no network.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from mock_server.harness.control_client import ControlClient
from mock_server.harness.pytest_plugin import ZestMock, ZestWebhookReceiver

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ATTRIBUTES = {"underlyingCompanySlug": "co_acme", "currency": "USD",
              "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}


class ZestClient:
    """Your code: the smallest correct Zest client (token cache, one Idempotency-Key per write, retries)."""

    def __init__(self, base_url: str, client_id: str, private_key_path: Path, audience: str, *,
                 clock: Callable[[], float] = time.time, attempts: int = 4) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0)
        self.client_id, self.audience, self.clock, self.attempts = client_id, audience, clock, attempts
        self.private_key = private_key_path.read_text()
        self._token: str | None = None

    def close(self) -> None:
        self.http.close()

    def create_spv_request(self, attributes: dict[str, Any]) -> dict[str, Any]:
        body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": attributes}
        return self._write("POST", "/v1/spv-requests", body)

    def get_spv_request(self, slug: str) -> dict[str, Any]:
        return _checked(self._send("GET", f"/v1/spv-requests/{slug}")).json()

    def _write(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        key = str(uuid.uuid4())  # one key per logical write, reused by every retry
        for attempt in range(self.attempts):
            response = self._send(method, path, json=body, headers={"Idempotency-Key": key})
            if response.status_code < 500 or attempt == self.attempts - 1:
                return _checked(response).json()
            time.sleep(0.05 * 2**attempt)  # backoff; your production code waits longer
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, *, headers: dict[str, str] | None = None,
              **kwargs: Any) -> httpx.Response:
        for fresh in (False, True):  # a token the API no longer accepts (401) is replaced once
            if fresh:
                self._token = None
            response = self.http.request(method, path, headers={**(headers or {}),
                                                                "Authorization": f"Bearer {self._bearer()}"}, **kwargs)
            if response.status_code != 401:
                break
        return response

    def _bearer(self) -> str:
        if self._token is None:
            now = int(self.clock())
            claims = {"iss": "https://partner.example.com", "sub": self.client_id, "client_id": self.client_id,
                      "aud": self.audience, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
            assertion = jwt.encode(claims, self.private_key, algorithm="EdDSA")
            response = self.http.post("/v1/oauth2/tokens", data={"grant_type": GRANT, "assertion": assertion})
            self._token = str(_checked(response).json()["accessToken"])
        return self._token


class ZestApiError(Exception):
    """A non-2xx answer, with the Zest error envelope ({code, detail, errorId}) in the message."""


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise ZestApiError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                           f"{response.text}")
    return response


@pytest.fixture
def partner(zest_mock: ZestMock) -> Iterator[ZestClient]:
    """Your client, configured for the mock exactly as it is for the sandbox (URL, client id, key file, aud)."""
    client = ZestClient(zest_mock.base_url, zest_mock.client_id, zest_mock.private_key_path, zest_mock.audience)
    yield client
    client.close()


def test_approved_spv_request_reaches_my_webhook_handler(partner: ZestClient, zest_control: ControlClient,
                                                         zest_webhook_receiver: ZestWebhookReceiver) -> None:
    created = partner.create_spv_request(ATTRIBUTES)
    slug = created["spvRequestSlug"]
    assert created["status"] == "pending-review"

    zest_control.advance(seconds=2 * 3600)      # Zest's review takes a while: nothing happens on its own
    zest_control.approve(slug)                  # play the Zest admin
    zest_control.advance(seconds=60)            # every delivery due by then has run

    event = zest_webhook_receiver.wait_for("spv_request.completed")
    assert event["data"]["spvRequestSlug"] == slug
    assert zest_webhook_receiver.event_types() == ["spv_request.created", "spv_request.completed"]
    assert zest_webhook_receiver.rejected == []
    assert partner.get_spv_request(slug)["status"] == "approved"


def test_a_503_is_retried_with_the_same_idempotency_key(partner: ZestClient, zest_control: ControlClient) -> None:
    # The write happens but the answer is lost: only a retry with the same key avoids a second SPV request.
    zest_control.add_fault({"match": {"operationId": "createSpvRequest"}, "action": "error_after_commit",
                            "status": 503, "times": 1})

    created = partner.create_spv_request(ATTRIBUTES)

    calls = zest_control.requests(operation_id="createSpvRequest")["items"]
    assert [call["status"] for call in calls] == [503, 201]
    assert calls[0]["idempotencyKey"] == calls[1]["idempotencyKey"]
    requests = zest_control.state()["partners"]["dev-partner"]["spvRequests"]
    assert [r["spvRequestSlug"] for r in requests["items"]] == [created["spvRequestSlug"]]
