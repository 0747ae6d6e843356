"""A reference partner client, written the way the Zest docs tell partners to write one.

It caches its access token and mints a fresh assertion only near expiry, generates one Idempotency-Key per
logical write and reuses it on every retry, retries 5xx, 429 and network timeouts with exponential backoff, and
uploads the signed form before the funding receipt.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mock_server.harness.assertions import exchange_assertion, mint_assertion

RETRYABLE = {429, 500, 502, 503, 504}


class ZestApiError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        body = response.json()
        super().__init__(f"{response.status_code} {body.get('code')}: {body.get('detail')} ({body.get('errorId')})")
        self.status = response.status_code
        self.code = body.get("code")
        self.body = body


class PartnerClient:
    def __init__(self, base_url: str, client_id: str, private_key_pem: str, audience: str, *,
                 now: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 attempts: int = 5, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.client_id, self.key, self.audience = client_id, private_key_pem, audience
        self.now, self.sleep, self.attempts = now, sleep, attempts
        self._token: str | None = None
        self._token_expiry = 0.0

    def close(self) -> None:
        self.http.close()

    def token(self) -> str:
        if self._token is None or self.now() > self._token_expiry - 60:
            response = exchange_assertion(self.http, mint_assertion(self.client_id, self.key, self.audience,
                                                                    now=self.now()))
            if response.status_code != 201:
                raise ZestApiError(response)
            body = response.json()
            self._token, self._token_expiry = body["accessToken"], self.now() + body["expiresIn"]
        return self._token

    def request(self, method: str, path: str, *, idempotency_key: str | None = None, **kwargs: Any) -> Any:
        """One logical call: the same key and body on every retry; backoff on 5xx, 429 and timeouts."""
        for attempt in range(self.attempts):
            headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:  # timeouts, refused, reset or dropped connections
                if attempt == self.attempts - 1:
                    raise
            else:
                if response.status_code not in RETRYABLE or attempt == self.attempts - 1:
                    if response.status_code >= 400:
                        raise ZestApiError(response)
                    return response.json()
            self.sleep(min(0.05 * 2**attempt, 1.0))
        raise AssertionError("unreachable")

    def create_spv_request(self, template_id: str, version: str, attributes: dict[str, Any]) -> Any:
        body = {"templateId": template_id, "templateVersion": version, "attributes": attributes}
        return self.request("POST", "/v1/spv-requests", json=body, idempotency_key=str(uuid.uuid4()))

    def get_spv_request(self, slug: str) -> Any:
        return self.request("GET", f"/v1/spv-requests/{slug}")

    def onboard(self, investors: list[dict[str, Any]]) -> Any:
        return self.request("POST", "/v1/investors", json={"investors": investors}, idempotency_key=str(uuid.uuid4()))

    def subscribe(self, spv_slug: str, rows: list[dict[str, Any]]) -> Any:
        return self.request("POST", f"/v1/spvs/{spv_slug}/subscriptions", json={"subscriptions": rows},
                            idempotency_key=str(uuid.uuid4()))

    def upload_form(self, spv_slug: str, person_id: str, path: Path, content_type: str) -> Any:
        files = {"file": (path.name, path.read_bytes(), content_type)}
        return self.request("POST", f"/v1/spvs/{spv_slug}/subscription/{person_id}/forms", files=files)

    def upload_funding(self, spv_slug: str, person_id: str, path: Path, content_type: str, amount: str,
                       currency: str, wire_reference: str) -> Any:
        files = {"file": (path.name, path.read_bytes(), content_type)}
        data = {"amount": amount, "currency": currency, "wireReference": wire_reference}
        return self.request("POST", f"/v1/spvs/{spv_slug}/subscription/{person_id}/fundings", files=files, data=data)
