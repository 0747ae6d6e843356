"""The admin console in a real headless Chromium: a person's clicks reach the mock and the page follows it live."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from browsing import FIXTURES, PHONE
from partner_client import PartnerClient
from support import SAMPLE_ATTRIBUTES, START, at


def open_console(page: Any, wait: Any, mock_url: str) -> None:
    page.get(f"{mock_url}/_mock/console")
    wait(lambda d: d.find_element("id", "live").text.startswith("live"), "the console never loaded the mock's state")
    page.execute_script("window.__sameDocument = true")  # gone if the page reloads


def button(page: Any, label: str, describes: str | None = None) -> Any:
    """The button whose accessible name is ``label`` (for the resource ``describes``, when given)."""
    condition = f"[@aria-describedby='{describes}']" if describes else ""
    found = page.find_element("xpath", f"//button[normalize-space()='{label}']{condition}")
    assert found.accessible_name == label
    return found


def same_document(page: Any) -> bool:
    return bool(page.execute_script("return window.__sameDocument === true"))


def test_approve_a_request_created_after_the_page_loaded(page: Any, wait: Any, mock_url: str,
                                                         partner: PartnerClient) -> None:
    open_console(page, wait, mock_url)
    slug = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)["spvRequestSlug"]

    approve = wait(lambda d: button(d, "Approve", f"spv-{slug}"), f"no Approve button for {slug}")
    button(page, "Reject", f"spv-{slug}")
    approve.click()

    approved = wait(lambda _: (r := partner.get_spv_request(slug))["status"] == "approved" and r,
                    "the Partner API never showed the request approved")
    vehicle = approved["materialisedRefs"]["vehicleSlug"]
    wait(lambda d: vehicle in d.find_element("id", "spv-body").text, "the approved row never showed its refs")
    wait(lambda d: "spv_request.completed" in d.find_element("id", "events-body").text,
         "spv_request.completed never appeared in the timeline")
    assert same_document(page), "the page reloaded"


def test_reject_asks_for_a_reason(page: Any, wait: Any, mock_url: str, partner: PartnerClient) -> None:
    open_console(page, wait, mock_url)
    slug = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)["spvRequestSlug"]
    wait(lambda d: button(d, "Reject", f"spv-{slug}")).click()
    reason = wait(lambda d: (box := d.find_element("css selector", "#reject-dialog textarea")).is_displayed() and box)
    reason.send_keys("sanctions screening failed")
    button(page, "Confirm reject").click()

    rejected = wait(lambda _: (r := partner.get_spv_request(slug))["status"] == "rejected" and r)
    assert rejected["rejectionReason"] == "sanctions screening failed"
    wait(lambda d: "spv_request.rejected" in d.find_element("id", "events-body").text)


def test_advance_the_clock_from_the_page(page: Any, wait: Any, mock_url: str) -> None:
    open_console(page, wait, mock_url)
    assert page.find_element("id", "clock-mode").text == "manual"
    button(page, "Advance 1 h").click()
    wait(lambda _: at(httpx.get(f"{mock_url}/_mock/clock").json()["now"]) == at(START) + timedelta(hours=1),
         "the mock's clock never moved by 1 h")
    wait(lambda d: "2026-05-07 13:00:00" in d.find_element("id", "clock-now").text, "the page never showed 13:00")

    duration = page.find_element("name", "duration")
    duration.send_keys("2h30m")
    button(page, "Advance").click()
    wait(lambda d: "2026-05-07 15:30:00" in d.find_element("id", "clock-now").text, "the page never showed 15:30")
    assert at(httpx.get(f"{mock_url}/_mock/clock").json()["now"]) == at(START) + timedelta(hours=3, minutes=30)


def test_complete_a_funded_subscription(page: Any, wait: Any, mock_url: str, partner: PartnerClient) -> None:
    request = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)
    approved = httpx.post(f"{mock_url}/_mock/admin/spv-requests/{request['spvRequestSlug']}/approve").json()
    vehicle, share_class = approved["materialisedRefs"]["vehicleSlug"], approved["feesAndCarry"]["shareClasses"][0]
    (person,) = partner.onboard([{"partnerInvestorId": "acme-inv-1", "email": "alice@example.com",
                                  "firstName": "Alice", "lastName": "Liddell", "dateOfBirth": "1985-04-12"}])["results"]
    (sub,) = partner.subscribe(vehicle, [{"zestPersonId": person["zestPersonId"], "shareClassSlug": share_class["slug"],
                                          "lumpSum": {"currency": "USD", "value": "50000.00"}}])["results"]
    partner.upload_form(vehicle, person["zestPersonId"], FIXTURES / "signed-form.pdf", "application/pdf")
    partner.upload_funding(vehicle, person["zestPersonId"], FIXTURES / "receipt.png", "image/png", "50000.00", "USD",
                           "W-42")
    open_console(page, wait, mock_url)
    slug = sub["subscriptionSlug"]
    form_link = page.find_element("link text", "signed form")
    assert httpx.get(form_link.get_attribute("href")).content == (FIXTURES / "signed-form.pdf").read_bytes()

    button(page, "Complete", f"sub-{slug}").click()
    wait(lambda _: httpx.get(f"{mock_url}/_mock/admin/subscriptions").json()["items"][0]["status"] == "completed")
    wait(lambda d: "subscription.completed" in d.find_element("id", "events-body").text)
    assert same_document(page)


def test_fault_rules_from_the_page_mark_the_journal(page: Any, wait: Any, mock_url: str,
                                                   partner: PartnerClient) -> None:
    open_console(page, wait, mock_url)
    page.find_element("name", "operationId").send_keys("createSpvRequest")
    button(page, "Add fault").click()
    wait(lambda _: len(httpx.get(f"{mock_url}/_mock/faults").json()["items"]) == 1, "the rule was never added")

    partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)  # 503 once, then retried
    wait(lambda d: "⚡ error#1" in d.find_element("id", "journal-body").text, "the journal never marked the fault")
    wait(lambda d: button(d, "Delete")).click()
    wait(lambda _: httpx.get(f"{mock_url}/_mock/faults").json()["items"] == [], "the rule was never deleted")


def test_the_console_fits_a_phone(page: Any, wait: Any, mock_url: str, partner: PartnerClient) -> None:
    page.set_window_size(*PHONE)
    slug = partner.create_spv_request("syndicate_secondary", "1.0.0", SAMPLE_ATTRIBUTES)["spvRequestSlug"]
    open_console(page, wait, mock_url)
    approve = wait(lambda d: button(d, "Approve", f"spv-{slug}"))
    width = page.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways on a phone: {width}"
    assert approve.is_displayed() and approve.rect["x"] + approve.rect["width"] <= width[1]
    approve.click()
    wait(lambda _: partner.get_spv_request(slug)["status"] == "approved")
