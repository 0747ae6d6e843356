"""Test support: building apps, tokens, the seed document's happy path, and a live uvicorn server on loopback."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from mock_server.clock import parse_instant
from mock_server.domain import auth
from mock_server.runtime import Runtime
from mock_server.serving import app_in_thread
from mock_server.settings import Settings

START = "2026-05-07T12:00:00.000Z"
DEV = "dev-partner"
SAMPLE_ATTRIBUTES: dict[str, Any] = {
    "underlyingCompanySlug": "co_acme",
    "currency": "USD",
    "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}],
}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
# pytester runs of a partner's suite: plugins of this venv that a partner's suite would not have (~3 s a run)
QUIET = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:cacheprovider")
# ... and a helper module for them: create(zest_mock) makes an SPV request, notes its slug in slugs.txt
PARTNER_HELPERS = '''
import uuid

import httpx

ATTRIBUTES = {"underlyingCompanySlug": "co_acme", "currency": "USD",
              "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}


def create(zest_mock):
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": ATTRIBUTES}
    headers = {"Authorization": f"Bearer {zest_mock.token()}", "Idempotency-Key": str(uuid.uuid4())}
    response = httpx.post(f"{zest_mock.base_url}/v1/spv-requests", json=body, headers=headers)
    assert response.status_code == 201, response.text
    slug = response.json()["spvRequestSlug"]
    with open("slugs.txt", "a") as out:
        out.write(slug + "\\n")
    return slug
'''


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"clock_mode": "manual", "seed": 1, "clock_start": START}
    return Settings(**{**base, **overrides})


def runtime(app: Starlette) -> Runtime:
    rt: Runtime = app.state.rt
    return rt


def bearer(app: Starlette, client_id: str = DEV) -> dict[str, str]:
    rt = runtime(app)
    grant = auth.issue_token(rt.store, rt.clock, rt.settings, client_id)
    return {"Authorization": f"Bearer {grant.access_token}"}


def now(app: Starlette) -> datetime:
    return runtime(app).clock.now()


def events(app: Starlette, event_type: str | None = None) -> list[dict[str, Any]]:
    rows = runtime(app).store.all("SELECT body FROM events ORDER BY seq")
    bodies = [json.loads(r["body"]) for r in rows]
    return [b for b in bodies if event_type is None or b["eventType"] == event_type]


def create_spv_request(client: TestClient, headers: dict[str, str], attributes: dict[str, Any] | None = None,
                       key: str | None = None) -> Any:
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0",
            "attributes": attributes or SAMPLE_ATTRIBUTES}
    return client.post("/v1/spv-requests", json=body, headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())})


def approved_spv(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """Create and approve an SPV request; returns the approved resource."""
    slug = create_spv_request(client, headers).json()["spvRequestSlug"]
    response = client.post(f"/_mock/admin/spv-requests/{slug}/approve")
    assert response.status_code == 200, response.text
    return dict(response.json())


def investor(client: TestClient, headers: dict[str, str], partner_id: str = "acme-inv-1") -> str:
    row = {"partnerInvestorId": partner_id, "email": "alice@example.com", "firstName": "Alice",
           "lastName": "Liddell", "dateOfBirth": "1985-04-12", "countryOfResidence": "AE"}
    response = client.post("/v1/investors", json={"investors": [row]}, headers=headers)
    return str(response.json()["results"][0]["zestPersonId"])


def subscription(client: TestClient, headers: dict[str, str]) -> tuple[str, str, str]:
    """An approved SPV with one pending subscription: (vehicle slug, person id, subscription slug)."""
    spv = approved_spv(client, headers)
    vehicle = spv["materialisedRefs"]["vehicleSlug"]
    share_class = spv["feesAndCarry"]["shareClasses"][0]["slug"]
    person = investor(client, headers)
    row = {"zestPersonId": person, "lumpSum": {"currency": "USD", "value": "50000.00"}, "shareClassSlug": share_class,
           "partnerSubscriptionId": "acme-sub-1"}
    response = client.post(f"/v1/spvs/{vehicle}/subscriptions", json={"subscriptions": [row]}, headers=headers)
    assert response.status_code == 201, response.text
    return vehicle, person, response.json()["results"][0]["subscriptionSlug"]


def at(text: str) -> datetime:
    return parse_instant(text)


@contextlib.contextmanager
def live_server(make_app: Callable[[str], Starlette], limits: bool = False) -> Iterator[tuple[str, Starlette]]:
    """Serve ``make_app(base_url)`` on the mock's threaded server (``serving.app_in_thread``); yields (URL, app).

    ``limits``: with the connection limits of ``zest-mock serve`` (``mock_server/http/limits.py``)."""
    def made(url: str) -> tuple[Starlette, Settings | None]:
        app = make_app(url)
        return app, runtime(app).settings if limits else None

    with app_in_thread(made) as (url, app, _):
        yield url, app
