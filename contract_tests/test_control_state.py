"""The state control plane: reset (with and without partners), seed replay, exact state counts, partner
registration with a generated key, and tokens without the JWT exchange."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.testclient import TestClient
from support import DEV, SAMPLE_ATTRIBUTES, START, approved_spv, create_spv_request, investor, now, settings

from mock_server.app import all_operations, create_app
from mock_server.control import journal, state
from mock_server.harness.assertions import exchange_assertion, mint_assertion

AUD = "http://localhost:8080"
SECRET = "whsec_" + "cd" * 32


@pytest.fixture
def mock() -> Iterator[TestClient]:
    with TestClient(create_app(settings()), raise_server_exceptions=False) as test_client:
        yield test_client


def token_headers(client: TestClient, client_id: str = DEV) -> dict[str, str]:
    response = client.post("/_mock/tokens", json={"clientId": client_id})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def register(client: TestClient, client_id: str = "beta", **extra: Any) -> dict[str, Any]:
    response = client.post("/_mock/partners", json={"clientId": client_id, "tenantSlug": f"{client_id}-t", **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def state_of(client: TestClient) -> dict[str, Any]:
    response = client.get("/_mock/state")
    assert response.status_code == 200, response.text
    return dict(response.json())


def settle(client: TestClient) -> None:
    assert client.post("/_mock/clock/advance", json={"seconds": 0}).status_code == 200


def counts(partner: dict[str, Any]) -> dict[str, int]:
    return {name: tally["count"] for name, tally in partner.items()}


ZERO = {"spvRequests": 0, "spvs": 0, "investors": 0, "subscriptions": 0, "events": 0, "deliveries": 0}


# ---- reset -------------------------------------------------------------------------------------------------------

def populate(client: TestClient) -> dict[str, str]:
    """Resources, events, an idempotency record, a journal entry, a policy, a partner; returns dev headers."""
    headers = token_headers(client)
    approved_spv(client, headers)
    investor(client, headers)
    register(client, "beta")
    assert client.put("/_mock/admin/policy", json={"spvReview": {"decision": "approve"}}).status_code == 200
    assert create_spv_request(client, headers, key="k-1").status_code == 201
    return headers


def test_reset_wipes_everything_and_restores_the_dev_partner(mock: TestClient) -> None:
    old = populate(mock)
    assert mock.post("/_mock/reset").status_code == 200  # no body: full reset
    snapshot = state_of(mock)
    assert list(snapshot["partners"]) == [DEV] and counts(snapshot["partners"][DEV]) == ZERO
    assert snapshot["pendingJobs"] == 0 and snapshot["journaledRequests"] == 0
    assert [p["clientId"] for p in mock.get("/_mock/partners").json()["items"]] == [DEV]
    assert mock.get("/v1/oauth2/info", headers=old).status_code == 401  # the token secret went with the partners
    assert mock.get("/_mock/admin/policy").json()["spvReview"]["decision"] == "manual"
    headers = token_headers(mock)
    other = {**SAMPLE_ATTRIBUTES, "currency": "EUR"}
    assert create_spv_request(mock, headers, other, key="k-1").status_code == 201  # idempotency records are gone
    assert mock.get("/_mock/webhooks/events").json()["items"][0]["eventType"] == "spv_request.created"


def test_reset_keeping_partners_keeps_them_their_tokens_and_endpoints(mock: TestClient) -> None:
    old = populate(mock)
    beta_headers = token_headers(mock, "beta")
    endpoint = {"url": "http://127.0.0.1:9/hook", "secret": SECRET}
    assert mock.put("/_mock/webhooks/endpoint", json=endpoint).status_code == 200
    response = mock.post("/_mock/reset", json={"keepPartners": True})
    assert response.status_code == 200
    assert response.json() == {"keptPartners": True, "partners": ["beta", DEV]}  # by registration time, then id
    snapshot = state_of(mock)
    assert {c: counts(p) for c, p in snapshot["partners"].items()} == {DEV: ZERO, "beta": ZERO}
    assert mock.get("/v1/oauth2/info", headers=old).json()["clientId"] == DEV
    assert mock.get("/v1/oauth2/info", headers=beta_headers).json()["clientId"] == "beta"
    dev = next(p for p in mock.get("/_mock/partners").json()["items"] if p["clientId"] == DEV)
    assert dev["webhookUrl"] == endpoint["url"] and dev["webhookSecret"] == SECRET


def test_full_reset_gives_the_dev_partner_its_configured_endpoint_back() -> None:
    app = create_app(settings(webhook_url="http://127.0.0.1:9/configured", admin_policy="demo"))
    with TestClient(app) as client:
        client.put("/_mock/webhooks/endpoint", json={"url": "http://127.0.0.1:9/changed"})
        client.put("/_mock/admin/policy", json={})
        assert client.post("/_mock/reset", json={"keepPartners": False}).status_code == 200
        (dev,) = client.get("/_mock/partners").json()["items"]
        assert dev["webhookUrl"] == "http://127.0.0.1:9/configured"
        assert client.get("/_mock/admin/policy").json()["spvReview"] == {
            "decision": "approve", "after": 60, "reason": "Rejected by the simulated admin policy"}


def test_reset_refuses_a_malformed_body(mock: TestClient) -> None:
    response = mock.post("/_mock/reset", json={"keepPartners": "yes"})
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    assert mock.post("/_mock/reset", json={"keep": True}).json()["validationErrors"][0]["code"] == "unknown_attribute"


# ---- seed ---------------------------------------------------------------------------------------------------------

def run_sequence(client: TestClient) -> list[str]:
    """A fixed sequence of calls; returns every id and seeded secret it produced (access tokens are credentials from
    the OS's randomness, deliberately not replayed)."""
    headers = token_headers(client)
    spv = approved_spv(client, headers)
    rejected = create_spv_request(client, headers).json()["spvRequestSlug"]
    client.post(f"/_mock/admin/spv-requests/{rejected}/reject", json={"reason": "no"})
    person = investor(client, headers)
    partner = register(client, "gamma")
    error_id = client.get("/v1/spv-requests/svr_missing", headers=headers).json()["errorId"]
    events = [e["eventId"] for e in client.get("/_mock/webhooks/events").json()["items"]]
    return [spv["spvRequestSlug"], *spv["materialisedRefs"].values(), rejected, person,
            partner["privateKeyPem"], partner["webhookSecret"], error_id, *events]


def test_the_same_seed_replays_the_same_ids(mock: TestClient) -> None:
    assert mock.post("/_mock/seed", json={"seed": 42}).json() == {"seed": 42}
    first = run_sequence(mock)
    mock.post("/_mock/reset")
    mock.post("/_mock/seed", json={"seed": 42})
    assert run_sequence(mock) == first
    mock.post("/_mock/reset")
    mock.post("/_mock/seed", json={"seed": 43})
    assert set(run_sequence(mock)[:4]).isdisjoint(first)
    assert state_of(mock)["seed"] == 43


@pytest.mark.parametrize("body", [{}, {"seed": -1}, {"seed": "42"}, {"seed": 1.5}, {"seed": 1, "x": 1}])
def test_seed_refuses_anything_but_a_non_negative_integer(mock: TestClient, body: dict[str, Any]) -> None:
    response = mock.post("/_mock/seed", json=body)
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


# ---- state --------------------------------------------------------------------------------------------------------

def test_state_counts_are_exact(mock: TestClient) -> None:
    dev = token_headers(mock)
    spv = approved_spv(mock, dev)
    pending = create_spv_request(mock, dev).json()["spvRequestSlug"]
    person = investor(mock, dev)
    vehicle, share_class = spv["materialisedRefs"]["vehicleSlug"], spv["feesAndCarry"]["shareClasses"][0]["slug"]
    row = {"zestPersonId": person, "lumpSum": {"currency": "USD", "value": "10.00"}, "shareClassSlug": share_class}
    sub = mock.post(f"/v1/spvs/{vehicle}/subscriptions", json={"subscriptions": [row]}, headers=dev)
    sub_slug = sub.json()["results"][0]["subscriptionSlug"]
    register(mock, "beta")
    beta = token_headers(mock, "beta")
    rejected = create_spv_request(mock, beta).json()["spvRequestSlug"]
    mock.post(f"/_mock/admin/spv-requests/{rejected}/reject", json={"reason": "no"})
    settle(mock)

    snapshot = state_of(mock)
    assert snapshot["clock"] == {"now": START, "mode": "manual", "scale": 1.0} and snapshot["seed"] == 1
    assert sorted(snapshot["partners"]) == ["beta", DEV]
    d, b = snapshot["partners"][DEV], snapshot["partners"]["beta"]
    assert d["spvRequests"] == {"count": 2, "byStatus": {"approved": 1, "pending-review": 1}, "items": [
        {"spvRequestSlug": spv["spvRequestSlug"], "status": "approved"},
        {"spvRequestSlug": pending, "status": "pending-review"}]}
    assert d["spvs"] == {"count": 1, "items": [{"vehicleSlug": vehicle, "spvRequestSlug": spv["spvRequestSlug"]}]}
    assert d["investors"] == {"count": 1, "items": [{"zestPersonId": person, "partnerInvestorId": "acme-inv-1"}]}
    assert d["subscriptions"] == {"count": 1, "byStatus": {"pending": 1}, "items": [
        {"subscriptionSlug": sub_slug, "status": "pending", "spvSlug": vehicle, "zestPersonId": person}]}
    assert d["events"] == {"count": 5, "byType": {"spv_request.created": 2, "spv_request.completed": 1,
                                                  "investor.created": 1, "subscription.created": 1}}
    assert d["deliveries"] == {"count": 5, "byStatus": {"awaiting_endpoint": 5}}  # the dev partner has no URL
    assert counts(b) == {**ZERO, "spvRequests": 1, "events": 2, "deliveries": 2}
    assert b["spvRequests"]["byStatus"] == {"rejected": 1}
    assert b["events"]["byType"] == {"spv_request.created": 1, "spv_request.rejected": 1}
    assert snapshot["pendingJobs"] == 0


def test_state_shows_the_clock_after_an_advance(mock: TestClient) -> None:
    mock.post("/_mock/clock/advance", json={"seconds": 90})
    assert state_of(mock)["clock"]["now"] == "2026-05-07T12:01:30.000Z"


# ---- partners and tokens ------------------------------------------------------------------------------------------

def test_a_registered_partner_with_a_generated_key_can_exchange_an_assertion(mock: TestClient) -> None:
    created = register(mock, "beta", issuer="https://beta.example.com", provisioned=True)
    assert created["privateKeyPem"].startswith("-----BEGIN PRIVATE KEY-----")
    assert created["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert created["webhookSecret"].startswith("whsec_") and created["webhookUrl"] is None
    assertion = mint_assertion("beta", created["privateKeyPem"], AUD, now=now(mock.app).timestamp(),
                               issuer="https://beta.example.com")
    response = exchange_assertion(mock, assertion)
    assert response.status_code == 201, response.text
    info = mock.get("/v1/oauth2/info", headers={"Authorization": f"Bearer {response.json()['accessToken']}"})
    assert info.json() == {"clientType": "service", "clientId": "beta", "metadata": {"tenantSlug": "beta-t"}}
    wrong_issuer = mint_assertion("beta", created["privateKeyPem"], AUD, now=now(mock.app).timestamp())
    assert exchange_assertion(mock, wrong_issuer).status_code == 401


def test_a_partner_registered_with_its_own_key_gets_no_private_key(mock: TestClient) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    created = register(mock, "own", publicKeyPem=public, webhookUrl="http://127.0.0.1:9/h", webhookSecret=SECRET,
                       provisioned=False)
    assert created["privateKeyPem"] is None and created["publicKeyPem"] == public
    listed = {p["clientId"]: p for p in mock.get("/_mock/partners").json()["items"]}
    assert list(listed) == [DEV, "own"]
    assert listed["own"] == {k: v for k, v in created.items() if k != "privateKeyPem"}
    assert listed["own"]["provisioned"] is False and listed["own"]["webhookSecret"] == SECRET


def test_registering_an_existing_partner_is_a_conflict(mock: TestClient) -> None:
    register(mock, "beta")
    for client_id in ("beta", DEV):
        response = mock.post("/_mock/partners", json={"clientId": client_id, "tenantSlug": "x"})
        assert response.status_code == 409 and response.json()["code"] == "conflict"


@pytest.mark.parametrize(("body", "field"), [
    ({"tenantSlug": "t"}, "clientId"),
    ({"clientId": "has space", "tenantSlug": "t"}, "clientId"),
    ({"clientId": "c", "tenantSlug": "t", "publicKeyPem": "not a key"}, "publicKeyPem"),
    ({"clientId": "c", "tenantSlug": "t", "webhookSecret": "secret"}, "webhookSecret"),
    ({"clientId": "c", "tenantSlug": "t", "webhookUrl": "ftp://x"}, "webhookUrl"),
    ({"clientId": "c", "tenantSlug": "t", "colour": "red"}, "colour"),
])
def test_partner_registration_validates_every_field(mock: TestClient, body: dict[str, Any], field: str) -> None:
    response = mock.post("/_mock/partners", json=body)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["validationErrors"]] == [field]


def test_a_non_ed25519_public_key_is_refused(mock: TestClient) -> None:
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    pem = generate_private_key(SECP256R1()).public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    response = mock.post("/_mock/partners", json={"clientId": "c", "tenantSlug": "t", "publicKeyPem": pem.decode()})
    assert response.status_code == 400 and "Ed25519" in response.json()["validationErrors"][0]["message"]


def test_a_mock_token_works_on_the_partner_api(mock: TestClient) -> None:
    register(mock, "beta")
    for client_id, tenant in ((DEV, "acme"), ("beta", "beta-t")):
        response = mock.post("/_mock/tokens", json={"clientId": client_id})
        assert response.status_code == 201
        body = response.json()
        assert body["tokenType"] == "Bearer" and body["expiresIn"] == 3600 and body["clientId"] == client_id
        info = mock.get("/v1/oauth2/info", headers={"Authorization": f"Bearer {body['accessToken']}"})
        assert info.status_code == 200 and info.json()["metadata"] == {"tenantSlug": tenant}
    default = mock.post("/_mock/tokens").json()  # no body: the dev partner
    assert default["clientId"] == DEV


def test_a_token_for_an_unknown_client_is_404(mock: TestClient) -> None:
    response = mock.post("/_mock/tokens", json={"clientId": "nobody"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found" and "nobody" in response.json()["detail"]
    assert mock.post("/_mock/tokens", json={"client": DEV}).status_code == 400


def test_mock_tokens_expire_on_simulated_time(mock: TestClient) -> None:
    headers = token_headers(mock)
    mock.post("/_mock/clock/advance", json={"seconds": 3600})
    assert mock.get("/v1/oauth2/info", headers=headers).status_code == 401


# ---- declarations -------------------------------------------------------------------------------------------------

def test_the_operations_belong_to_the_control_plane_and_their_ids_are_unique() -> None:
    ours = [*state.OPERATIONS, *journal.OPERATIONS]
    assert all(op.plane == "control" and op.path.startswith("/_mock/") for op in ours)
    ids = [op.operation_id for op in all_operations() if op not in ours] + [op.operation_id for op in ours]
    assert len(ids) == len(set(ids))


def test_reset_does_not_rewind_the_id_stream(mock: TestClient) -> None:
    """Without a reseed, resources created after a reset get new ids."""
    headers = token_headers(mock)
    first = create_spv_request(mock, headers).json()["spvRequestSlug"]
    mock.post("/_mock/reset")
    second = create_spv_request(mock, token_headers(mock)).json()["spvRequestSlug"]
    assert first != second
