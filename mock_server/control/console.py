"""The admin console at ``/_mock/console``, and the admin's cross-partner listings it reads.

The page is ``data/console/index.html`` (with its script and styles under ``/_mock/assets/console/``); it polls
the documented control plane and acts only through documented control calls. What it needed and the control
plane lacked is here: every partner's SPV requests and subscriptions, the latter with their form and funding state
and signed links to the stored files.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from mock_server.domain import spv_requests, subscriptions, uploads
from mock_server.errors import FieldError, InvalidRequest
from mock_server.http.assets import asset_response
from mock_server.http.bodies import int_query, json_response
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Call, Operation, Param
from mock_server.models import SpvRequestResponse, SubscriptionResult, dump
from mock_server.runtime import Runtime
from mock_server.store import Row

DEFAULT_LIMIT, MAX_LIMIT = 200, 1000


class AdminSpvRequests(BaseModel):
    items: list[SpvRequestResponse]


class StoredFile(BaseModel):
    sha256: str
    uploadedAt: str
    url: str


class FundingReceipt(StoredFile):
    amount: str
    currency: str
    wireReference: str


class AdminSubscription(SubscriptionResult):
    clientId: str
    partnerInvestorId: str | None = None
    createdAt: str
    completedAt: str | None = None
    form: StoredFile | None = None
    funding: FundingReceipt | None = None


class AdminSubscriptions(BaseModel):
    items: list[AdminSubscription]


async def page(call: Call) -> Response:
    return asset_response("console", "index.html")


async def list_spv_requests(call: Call) -> Response:
    status, client_id, limit = _filters(call, _SPV_STATUSES)
    items = spv_requests.admin_list(call.rt, status, client_id, limit)
    return json_response({"items": [dump(item) for item in items]})


async def list_subscriptions(call: Call) -> Response:
    status, client_id, limit = _filters(call, _SUBSCRIPTION_STATUSES)
    rows = subscriptions.admin_list(call.rt, status, client_id, limit)
    return json_response({"items": [dump(_subscription(call.rt, row)) for row in rows]})


def _filters(call: Call, statuses: list[str]) -> tuple[str | None, str | None, int]:
    query = call.request.query_params
    limit = int_query(query.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    status = query.get("status") or None
    if status is not None and status not in statuses:
        raise InvalidRequest(f"status must be one of {', '.join(statuses)}",
                             field_errors=[FieldError("status", "enum", "unknown status", status[:50])])
    return status, query.get("clientId") or None, limit


def _subscription(rt: Runtime, row: Row) -> AdminSubscription:
    form = funding = None
    if row["form_sha256"]:
        form = StoredFile(sha256=row["form_sha256"], uploadedAt=row["form_uploaded_at"],
                          url=uploads.signed_url(rt, row["form_sha256"]))
    if row["funding_sha256"]:
        funding = FundingReceipt(sha256=row["funding_sha256"], uploadedAt=row["funding_uploaded_at"],
                                 url=uploads.signed_url(rt, row["funding_sha256"]), amount=row["funding_amount"],
                                 currency=row["funding_currency"], wireReference=row["wire_reference"])
    fields: dict[str, Any] = dump(subscriptions.to_result(row))
    return AdminSubscription(**fields, clientId=row["client_id"], partnerInvestorId=row["partner_investor_id"],
                             createdAt=row["created_at"], completedAt=row["completed_at"], form=form, funding=funding)


def _listing_params(statuses: list[str]) -> tuple[Param, ...]:
    return (Param("status", "query", {"type": "string", "enum": statuses}),
            Param("clientId", "query", {"type": "string"}),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                  description="How many of the latest to return"))


_SPV_STATUSES = ["pending-review", "approved", "rejected", "cancelled"]
_SUBSCRIPTION_STATUSES = ["pending", "form_uploaded", "funded", "completed", "cancelled"]
OPERATIONS = [
    Operation("GET", "/_mock/console", "getConsole", "Mock console",
              "The admin console: review requests, complete subscriptions, move time, watch webhooks", page,
              {200: Answer("The console page", media_type="text/html")}, plane="control",
              description="One page, no network assets, refreshed by polling this control plane; every action it "
                          "offers is one of the documented control calls."),
    Operation("GET", "/_mock/admin/spv-requests", "listAdminSpvRequests", "Mock admin",
              "Every partner's SPV requests, oldest first", list_spv_requests,
              {200: Answer("SPV requests", AdminSpvRequests), **errors(400)},
              params=_listing_params(_SPV_STATUSES), plane="control"),
    Operation("GET", "/_mock/admin/subscriptions", "listAdminSubscriptions", "Mock admin",
              "Every partner's subscriptions with their form and funding state, oldest first", list_subscriptions,
              {200: Answer("Subscriptions, with signed links to the stored form and receipt", AdminSubscriptions),
               **errors(400)},
              params=_listing_params(_SUBSCRIPTION_STATUSES), plane="control"),
]
