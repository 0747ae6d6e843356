"""The nine event types: their exact ``data`` payloads, and the outbox write every state change makes.

``emit`` runs inside the domain's transaction: the event row (its exact wire bytes, reused on every attempt) and
its delivery row and job are committed with the change that caused them, or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mock_server.clock import format_instant
from mock_server.domain import partners
from mock_server.ids import IdGenerator
from mock_server.scheduler import schedule
from mock_server.store import Row, Store, dumps, loads
from mock_server.webhooks import outbox

EVENT_TYPES = (
    "spv_request.created", "spv_request.completed", "spv_request.rejected", "spv_request.cancelled",
    "investor.created", "subscription.created", "signed_subscription_form.uploaded",
    "funding_receipt.uploaded", "subscription.completed",
)


def emit(store: Store, ids: IdGenerator, client_id: str, event_type: str, data: dict[str, Any], at: datetime) -> str:
    """Store one event and queue its delivery; returns the eventId."""
    assert event_type in EVENT_TYPES, event_type
    event_id = ids.fresh_hex("wde_", 8, lambda e: outbox.event_taken(store, e))
    occurred_at = format_instant(at)
    body = dumps({"eventId": event_id, "eventType": event_type, "occurredAt": occurred_at, "data": data}).encode()
    outbox.add_event(store, event_id, client_id, event_type, occurred_at, body)
    queue_delivery(store, ids, event_id, client_id, occurred_at, kind="original")
    return event_id


def queue_delivery(store: Store, ids: IdGenerator, event_id: str, client_id: str, due: str, *, kind: str) -> str:
    """A delivery chain for an event, with its first attempt scheduled at ``due``; parked (no job) while the
    partner has no endpoint, until one is set."""
    delivery_id = ids.delivery_id(lambda d: outbox.delivery_taken(store, d))
    partner = partners.find(store, client_id)
    status = "pending" if partner and partner.webhook_url else "awaiting_endpoint"
    outbox.add_delivery(store, delivery_id, event_id, client_id, status, due, kind)
    if status == "pending":
        schedule_attempt(store, client_id, delivery_id, due)
    return delivery_id


def schedule_attempt(store: Store, client_id: str, delivery_id: str, due: str, *, released: bool = False) -> None:
    """The ``deliver`` job of a delivery's next attempt, in its partner's lane, keyed by the delivery id."""
    payload = {"deliveryId": delivery_id, **({"released": True} if released else {})}
    schedule(store, "deliver", due, payload, lane=client_id, key=delivery_id)


def spv_request_data(row: Row) -> dict[str, Any]:
    """``data`` of the four ``spv_request.*`` events, by the request's status."""
    data: dict[str, Any] = {
        "spvRequestSlug": row["slug"], "templateId": row["template_id"], "templateVersion": row["template_version"],
        "tenantSlug": row["tenant_slug"], "attributes": loads(row["attributes"]), "status": row["status"],
    }
    if row["status"] == "approved":
        data["materialisedRefs"] = loads(row["materialised_refs"])
        data["approvedAt"] = row["approved_at"]
    elif row["status"] == "rejected":
        data["rejectionReason"] = row["rejection_reason"]
        data["rejectedAt"] = row["rejected_at"]
    elif row["status"] == "cancelled":
        data["cancelledAt"] = row["cancelled_at"]
    return data


def investor_data(row: Row) -> dict[str, Any]:
    return {
        "partnerInvestorId": row["partner_investor_id"], "zestPersonId": row["person_id"], "email": row["email"],
        "firstName": row["first_name"], "lastName": row["last_name"], "kycManagedBy": "partner",
    }


def subscription_created_data(row: Row) -> dict[str, Any]:
    data = _holder(row)
    data.pop("partnerInvestorId", None)  # not part of this event's payload
    if row["partner_subscription_id"]:
        data["partnerSubscriptionId"] = row["partner_subscription_id"]
    data.update(lumpSum=loads(row["lump_sum"]), shareClassSlug=row["share_class_slug"], status="pending")
    return data


def form_uploaded_data(row: Row, url: str) -> dict[str, Any]:
    return {**_holder(row), "subscriptionFormUrl": url, "uploadedAt": row["form_uploaded_at"]}


def funding_uploaded_data(row: Row, url: str) -> dict[str, Any]:
    return {
        **_holder(row), "fundingReceiptUrl": url, "amount": row["funding_amount"],
        "currency": row["funding_currency"], "wireReference": row["wire_reference"],
        "uploadedAt": row["funding_uploaded_at"],
    }


def subscription_completed_data(row: Row) -> dict[str, Any]:
    data = _holder(row)
    if row["partner_subscription_id"]:
        data["partnerSubscriptionId"] = row["partner_subscription_id"]
    data.update(completedAt=row["completed_at"], status="completed")
    return data


def _holder(row: Row) -> dict[str, Any]:
    """Subscription identity; ``partnerInvestorId`` only when the person has one (omitted, never null)."""
    data: dict[str, Any] = {"subscriptionSlug": row["slug"], "spvSlug": row["spv_slug"], "personId": row["person_id"]}
    if row.get("partner_investor_id"):
        data["partnerInvestorId"] = row["partner_investor_id"]
    return data
