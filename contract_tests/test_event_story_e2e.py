"""The partner's asynchronous half end to end: the admin policy drives review and completion on simulated time,
and every one of the nine event types reaches a real receiver, signed and verified, without a single sleep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from partner_client import PartnerClient
from receiver import Receiver, verify
from support import SAMPLE_ATTRIBUTES, live_server, settings

from mock_server.app import create_app
from mock_server.dev_partner import dev_partner_private_key
from mock_server.webhooks.events import EVENT_TYPES

SECRET = "whsec_" + "cd" * 32
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
POLICY = {"spvReview": {"decision": "approve", "after": 7200},
          "subscriptionCompletion": {"decision": "complete", "after": 3600, "emit": "reconciler"}}


def advance(mock: httpx.Client, seconds: float) -> dict[str, Any]:
    response = mock.post("/_mock/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_nine_event_story_reaches_the_receiver(receiver: Receiver) -> None:
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, app):
        mock = httpx.Client(base_url=url)
        assert mock.put("/_mock/webhooks/endpoint", json={"url": receiver.url, "secret": SECRET}).status_code == 200
        assert mock.put("/_mock/admin/policy", json=POLICY).status_code == 200
        partner = PartnerClient(url, "dev-partner", dev_partner_private_key(), app.state.rt.settings.expected_audience,
                                now=lambda: app.state.rt.clock.now().timestamp())

        cancelled = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)
        partner.request("DELETE", f"/v1/spv-requests/{cancelled['spvRequestSlug']}")
        rejected = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)
        mock.post(f"/_mock/admin/spv-requests/{rejected['spvRequestSlug']}/reject", json={"reason": "Duplicate deal"})
        request = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)
        advance(mock, 7200)  # the policy's reviewer approves after two hours
        approved = partner.get_spv_request(request["spvRequestSlug"])
        assert approved["status"] == "approved"

        vehicle = approved["materialisedRefs"]["vehicleSlug"]
        (row,) = partner.onboard([{"partnerInvestorId": "acme-inv-1", "email": "a@example.com", "firstName": "A",
                                   "lastName": "B", "dateOfBirth": "1980-01-01"}])["results"]
        person = row["zestPersonId"]
        partner.subscribe(vehicle, [{"zestPersonId": person, "shareClassSlug": "sc_classA",
                                     "lumpSum": {"currency": "USD", "value": "50000.00"}}])
        partner.upload_form(vehicle, person, FIXTURES / "signed-form.pdf", "application/pdf")
        partner.upload_funding(vehicle, person, FIXTURES / "receipt.png", "image/png", "50000.00", "USD", "W-9")
        advance(mock, 3600 + 60)  # completion after an hour, emitted by the next reconciler sweep
        partner.close()
        mock.close()

    types = [body["eventType"] for body in receiver.bodies()]
    assert set(types) == set(EVENT_TYPES) and types.count("spv_request.created") == 3 and len(types) == 11
    assert all(verify(d.headers["zest-signature"], d.body, SECRET) for d in receiver.deliveries)
    stamps = {b["eventType"]: b["occurredAt"] for b in receiver.bodies()}
    assert stamps["spv_request.completed"] == "2026-05-07T14:00:00.000Z"
    assert stamps["subscription.completed"] == "2026-05-07T15:00:00.000Z"  # the admin's time, not the sweep's
