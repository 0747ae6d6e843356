"""Tenant isolation: partner B, registered through the control plane, cannot reach partner A's resources.

Table-driven over every /v1 operation that addresses a resource (the served document says which; a test fails
when one has no probe): each of B's attempts on one of A's resources
answers exactly what the same call on an id that never existed answers (404, same code, same detail but for the
id), so B cannot even learn that A's resource exists; and afterwards A's resources, events and journal are as they
were. Operations that address no resource (list, bulk onboarding, create with a reused Idempotency-Key, token
info) show B only B. Webhook endpoints, events, delivery attempts, chaos, fault rules and the request journal are
kept apart per partner too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from receiver import Receiver, start_receiver, stop_receiver
from starlette.testclient import TestClient
from support import DEV, PDF, SAMPLE_ATTRIBUTES, approved_spv, create_spv_request, investor, subscription

from mock_server.app import partner_document
from mock_server.harness import documents

B = "partner-b"
SECRET_A, SECRET_B = "whsec_" + "a1" * 16, "whsec_" + "b2" * 16
FUNDING = {"amount": "10.00", "currency": "USD", "wireReference": "W-1"}


@dataclass(frozen=True)
class World:
    """A's resources (pending request, approved SPV with an open subscription) and B's own SPV and investor."""

    a: dict[str, str]
    b: dict[str, str]
    a_headers: dict[str, str]
    b_headers: dict[str, str]


@dataclass(frozen=True)
class Probe:
    """One call of B on A's resource; ``{x}`` placeholders are filled from A's ids, or from ids that never were."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    files: bool = False
    fields: dict[str, str] | None = None
    owned: bool = True  # addresses only A's resources, so A's own identical call is not a 404


FAKE = {"pending": "svr_nosuchthing", "approved": "svr_nosuchother", "vehicle": "veh_nosuchthing",
        "person": "psn_nosuchthing"}  # ids of A's kinds that never existed

PROBES: dict[str, Probe] = {
    "getSpvRequest (pending)": Probe("GET", "/v1/spv-requests/{pending}"),
    "getSpvRequest (approved)": Probe("GET", "/v1/spv-requests/{approved}"),
    "cancelSpvRequest": Probe("DELETE", "/v1/spv-requests/{pending}"),
    "createSubscriptions on A's SPV": Probe("POST", "/v1/spvs/{vehicle}/subscriptions", json={"subscriptions": [
        {"zestPersonId": "{b_person}", "lumpSum": {"currency": "USD", "value": "1.00"}, "shareClassSlug": "x"}]},
        owned=False),
    "createSubscriptions for A's person": Probe("POST", "/v1/spvs/{b_vehicle}/subscriptions", json={"subscriptions": [
        {"zestPersonId": "{person}", "lumpSum": {"currency": "USD", "value": "1.00"}, "shareClassSlug": "{b_class}"}]},
        owned=False),
    "uploadSubscriptionForm": Probe("POST", "/v1/spvs/{vehicle}/subscription/{person}/forms", files=True),
    "uploadSubscriptionForm for A's person": Probe("POST", "/v1/spvs/{b_vehicle}/subscription/{person}/forms",
                                                   files=True, owned=False),
    "uploadFundingReceipt": Probe("POST", "/v1/spvs/{vehicle}/subscription/{person}/fundings", files=True,
                                  fields=FUNDING),
}


def operation_of(probe: Probe) -> str:
    """The served operation a probe calls: the one whose method and path template match it."""
    found = [op.operation_id for op in documents.operations(partner_document())
             if op.method == probe.method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", op.path), probe.path)]
    assert len(found) == 1, f"{probe} matches {found}"
    return found[0]


def test_every_operation_that_addresses_a_resource_is_probed() -> None:
    """Derived from the served document: each secured operation with a path parameter has a probe above."""
    addressing = {op.operation_id for op in documents.operations(partner_document())
                  if op.secured and op.path_parameters}
    assert {operation_of(probe) for probe in PROBES.values()} == addressing


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], value)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def send(client: TestClient, headers: dict[str, str], probe: Probe, ids: dict[str, str]) -> Any:
    files = {"file": ("f.pdf", PDF, "application/pdf")} if probe.files else None
    return client.request(probe.method, fill(probe.path, ids), json=fill(probe.json, ids), files=files,
                          data=probe.fields, headers=headers)


@pytest.fixture
def world(client: TestClient, headers: dict[str, str]) -> World:
    vehicle, person, sub = subscription(client, headers)
    approved = client.get("/v1/spv-requests", headers=headers).json()["documents"][0]["spvRequestSlug"]
    pending = create_spv_request(client, headers).json()["spvRequestSlug"]
    registered = client.post("/_mock/partners", json={"clientId": B, "tenantSlug": "beta"})
    assert registered.status_code == 201, registered.text
    token = client.post("/_mock/tokens", json={"clientId": B}).json()["accessToken"]
    b_headers = {"Authorization": f"Bearer {token}"}
    b_spv = approved_spv(client, b_headers)
    b_person = investor(client, b_headers, "beta-inv-1")
    b = {"b_vehicle": b_spv["materialisedRefs"]["vehicleSlug"], "b_person": b_person,
         "b_class": b_spv["feesAndCarry"]["shareClasses"][0]["slug"]}
    a = {"pending": pending, "approved": approved, "vehicle": vehicle, "person": person, "subscription": sub}
    return World(a, b, headers, b_headers)


def a_view(client: TestClient) -> dict[str, Any]:
    """Everything the control plane shows of A: resources, events, attempts."""
    return {"state": client.get("/_mock/state").json()["partners"][DEV],
            "events": client.get("/_mock/webhooks/events", params={"clientId": DEV}).json()["items"],
            "attempts": client.get("/_mock/webhooks/deliveries", params={"clientId": DEV}).json()["items"]}


def last_seq(client: TestClient) -> int:
    items = client.get("/_mock/requests", params={"limit": 1}).json()["items"]
    return int(items[-1]["seq"]) if items else 0


@pytest.mark.parametrize("name", sorted(PROBES))
def test_b_gets_the_same_404_for_a_resource_of_a_as_for_one_that_never_existed(
        client: TestClient, world: World, name: str) -> None:
    probe = PROBES[name]
    before, mark = a_view(client), last_seq(client)
    on_a = send(client, world.b_headers, probe, {**world.b, **world.a})
    on_nothing = send(client, world.b_headers, probe, {**world.b, **FAKE})
    assert on_a.status_code == 404, on_a.text
    assert on_nothing.status_code == 404, on_nothing.text
    assert on_a.json()["code"] == on_nothing.json()["code"] == "not_found"
    assert scrub(on_a.json()["detail"], world.a) == scrub(on_nothing.json()["detail"], FAKE)
    assert a_view(client) == before  # nothing of A moved, no event of A
    journaled = client.get("/_mock/requests", params={"clientId": B}).json()["items"]
    assert [(e["status"], e["clientId"]) for e in journaled if e["seq"] > mark] == [(404, B), (404, B)]
    assert all(e["seq"] <= mark for e in client.get("/_mock/requests", params={"clientId": DEV}).json()["items"])
    if probe.owned:  # the probe addressed something real: A's own identical call reaches it
        assert send(client, world.a_headers, probe, {**world.b, **world.a}).status_code in (200, 201, 409)


def scrub(detail: str, ids: dict[str, str]) -> str:
    for value in ids.values():
        if value:
            detail = detail.replace(value, "<id>")
    return detail


def test_b_lists_only_its_own_requests(client: TestClient, world: World) -> None:
    for params in ({}, {"status": "pending-review"}, {"status": "approved"}, {"perPage": "100"}):
        page = client.get("/v1/spv-requests", params=params, headers=world.b_headers).json()
        assert world.a["pending"] not in str(page) and world.a["approved"] not in str(page)
    everything = client.get("/v1/spv-requests", params={"perPage": "100"}, headers=world.b_headers).json()
    assert everything["count"] == 1  # B's own approved request only


def test_b_onboarding_a_partner_investor_id_of_a_gets_its_own_person(client: TestClient, world: World) -> None:
    row = {"partnerInvestorId": "acme-inv-1", "email": "alice@example.com", "firstName": "Alice",
           "lastName": "Liddell", "dateOfBirth": "1985-04-12"}
    (result,) = client.post("/v1/investors", json={"investors": [row]}, headers=world.b_headers).json()["results"]
    assert result["status"] == "created"  # not already_exists: A's record is invisible
    assert result["zestPersonId"] != world.a["person"]


def test_b_reusing_a_key_of_a_gets_its_own_resource(client: TestClient, world: World) -> None:
    first = create_spv_request(client, world.a_headers, key="shared-key")
    again = create_spv_request(client, world.b_headers, key="shared-key")
    other_body = create_spv_request(client, world.b_headers, {**SAMPLE_ATTRIBUTES, "currency": "EUR"},
                                    key="shared-key-2")
    assert create_spv_request(client, world.a_headers, key="shared-key-2").status_code == 201  # no 409 across
    assert first.status_code == again.status_code == other_body.status_code == 201
    assert again.json()["spvRequestSlug"] != first.json()["spvRequestSlug"]
    assert again.json()["tenantSlug"] == "beta" and first.json()["tenantSlug"] == "acme"


def test_token_info_names_the_caller(client: TestClient, world: World) -> None:
    info = client.get("/v1/oauth2/info", headers=world.b_headers).json()
    assert info == {"clientType": "service", "clientId": B, "metadata": {"tenantSlug": "beta"}}


@pytest.fixture
def receivers(receiver: Receiver) -> Iterator[tuple[Receiver, Receiver]]:
    other = start_receiver(Receiver())
    yield receiver, other
    stop_receiver(other)


def test_events_deliveries_chaos_and_faults_stay_per_partner(client: TestClient, world: World,
                                                           receivers: tuple[Receiver, Receiver]) -> None:
    to_a, to_b = receivers
    assert client.put(f"/_mock/webhooks/chaos/{B}", json={"failAttempts": 6}).status_code == 200  # before any send
    for client_id, target, secret in ((DEV, to_a, SECRET_A), (B, to_b, SECRET_B)):
        response = client.put("/_mock/webhooks/endpoint", json={"clientId": client_id, "url": target.url,
                                                               "secret": secret})
        assert response.status_code == 200, response.text
    fault = {"match": {"clientId": B}, "action": "error", "status": 503, "times": None}
    assert client.post("/_mock/faults", json=fault).status_code == 201
    assert client.get("/v1/spv-requests", headers=world.b_headers).status_code == 503
    assert client.get("/v1/spv-requests", headers=world.a_headers).status_code == 200  # B's fault spares A
    assert client.post("/_mock/clock/advance", json={"seconds": 0}).status_code == 200

    events = {c: {e["eventId"] for e in client.get("/_mock/webhooks/events", params={"clientId": c}).json()["items"]}
              for c in (DEV, B)}
    assert events[DEV] and events[B] and not events[DEV] & events[B]
    assert {body["eventId"] for body in to_a.bodies()} == events[DEV]  # A's chaos is untouched: delivered
    assert to_b.deliveries == []  # B's chaos failed B's attempts without calling B; nothing of A went to B
    attempts = {c: client.get("/_mock/webhooks/deliveries", params={"clientId": c}).json()["items"] for c in (DEV, B)}
    for client_id, outcome in ((DEV, "delivered"), (B, "failed")):
        assert {a["outcome"] for a in attempts[client_id]} == {outcome}
        assert {a["eventId"] for a in attempts[client_id]} == events[client_id]
    assert client.get(f"/_mock/webhooks/chaos/{DEV}").json()["failAttempts"] == 0

    assert client.delete("/_mock/faults").status_code == 200
    assert client.put(f"/_mock/webhooks/chaos/{B}", json={}).status_code == 200
    redelivered = client.post(f"/_mock/webhooks/events/{sorted(events[B])[0]}/redeliver")
    assert redelivered.status_code == 202 and redelivered.json()["clientId"] == B
    client.post("/_mock/clock/advance", json={"seconds": 0})
    assert [b["eventId"] for b in to_b.bodies()] == [sorted(events[B])[0]]
    assert not any(world.a["person"] in d.body.decode() or world.a["vehicle"] in d.body.decode()
                   for d in to_b.deliveries)
    state = client.get("/_mock/state").json()["partners"]
    assert world.a["person"] not in str(state[B]) and world.b["b_person"] not in str(state[DEV])
