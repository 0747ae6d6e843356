"""The seed document's happy path, end to end over real HTTP (uvicorn on loopback) with a partner-style client."""

from __future__ import annotations

from pathlib import Path

import httpx
from partner_client import PartnerClient, ZestApiError
from support import SAMPLE_ATTRIBUTES, events, live_server, settings

from mock_server.app import create_app
from mock_server.dev_partner import dev_partner_private_key

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_full_happy_path_over_http() -> None:
    aud = "https://sandbox.api.zestequity.com"
    with live_server(lambda url: create_app(settings(audience=aud, public_url=url))) as (url, app):
        sim_now = lambda: app.state.rt.clock.now().timestamp()  # noqa: E731 - the partner's clock is the mock's
        partner = PartnerClient(url, "dev-partner", dev_partner_private_key(), aud, now=sim_now)
        request = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)
        assert request["status"] == "pending-review"
        approved = httpx.post(f"{url}/_mock/admin/spv-requests/{request['spvRequestSlug']}/approve").json()
        assert partner.get_spv_request(request["spvRequestSlug"])["status"] == "approved"
        vehicle = approved["materialisedRefs"]["vehicleSlug"]
        share_class = approved["feesAndCarry"]["shareClasses"][0]["slug"]
        (row,) = partner.onboard([{"partnerInvestorId": "acme-inv-7341", "email": "alice@example.com",
                                   "firstName": "Alice", "lastName": "Liddell", "dateOfBirth": "1985-04-12",
                                   "countryOfResidence": "AE"}])["results"]
        person = row["zestPersonId"]
        (sub,) = partner.subscribe(vehicle, [{"zestPersonId": person, "shareClassSlug": share_class,
                                             "lumpSum": {"currency": "USD", "value": "50000.00"},
                                             "partnerSubscriptionId": "acme-sub-9921"}])["results"]
        try:
            partner.upload_funding(vehicle, person, FIXTURES / "receipt.png", "image/png", "50000.00", "USD", "W-1")
            raise AssertionError("funding before form must be refused")
        except ZestApiError as exc:
            assert exc.status == 409 and exc.code == "conflict"
        form = partner.upload_form(vehicle, person, FIXTURES / "signed-form.pdf", "application/pdf")
        assert httpx.get(form["subscriptionFormUrl"]).content == (FIXTURES / "signed-form.pdf").read_bytes()
        funding = partner.upload_funding(vehicle, person, FIXTURES / "receipt.png", "image/png", "50000.00", "USD",
                                         "ACME-WIRE-20260507-9921")
        assert funding["wireReference"] == "ACME-WIRE-20260507-9921"
        done = httpx.post(f"{url}/_mock/admin/subscriptions/{sub['subscriptionSlug']}/complete")
        assert done.status_code == 200 and done.json()["status"] == "completed"
        partner.close()
        assert [e["eventType"] for e in events(app)] == [
            "spv_request.created", "spv_request.completed", "investor.created", "subscription.created",
            "signed_subscription_form.uploaded", "funding_receipt.uploaded", "subscription.completed",
        ]
        completed = events(app, "subscription.completed")[0]["data"]
        assert completed["partnerInvestorId"] == "acme-inv-7341"
        assert completed["partnerSubscriptionId"] == "acme-sub-9921"
