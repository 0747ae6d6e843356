"""Control routes that play the Zest admin: approve or reject SPV requests, complete funded subscriptions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mock_server.domain import admin, policy, spv_requests, subscriptions
from mock_server.http.bodies import json_response, read_json
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation, Param
from mock_server.http.writes import Effect
from mock_server.models import SpvRequestResponse, SubscriptionResult, dump
from mock_server.validation import parse_model


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str = Field(min_length=1, max_length=2000)


class CompleteBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    emit: Literal["sync", "reconciler"] = "sync"


async def approve(call: Call) -> Effect:
    slug = call.request.path_params["slug"]
    return Effect(lambda: (200, dump(spv_requests.approve(call.rt, slug))))


async def reject(call: Call) -> Effect:
    body = parse_model(RejectBody, await read_json(call.request, 64 * 1024))
    slug = call.request.path_params["slug"]
    return Effect(lambda: (200, dump(spv_requests.reject(call.rt, slug, body.reason))))


async def complete(call: Call) -> Effect:
    body = CompleteBody()
    if await call.request.body():
        body = parse_model(CompleteBody, await read_json(call.request, 64 * 1024))
    slug = call.request.path_params["subscriptionSlug"]

    def effect() -> tuple[int, object]:
        admin.complete_subscription(call.rt, slug, body.emit)
        return 200, dump(subscriptions.to_result(subscriptions.holder_by_slug(call.rt, slug)))

    return Effect(effect)


async def get_policy(call: Call) -> Response:
    return json_response(policy.current(call.rt).model_dump())


async def put_policy(call: Call) -> Response:
    body = parse_model(policy.AdminPolicy, await read_json(call.request, 8192))
    return json_response(policy.set_policy(call.rt, body).model_dump())


_SLUG = (Param("slug", "path", {"type": "string"}, True),)
OPERATIONS = [
    Operation("POST", "/_mock/admin/spv-requests/{slug}/approve", "adminApproveSpvRequest", "Mock admin",
              "Approve a pending SPV request (materialises the SPV)", approve,
              {200: Answer("Approved", SpvRequestResponse), **errors(404, 409)}, params=_SLUG, plane="control",
              transaction=True),
    Operation("POST", "/_mock/admin/spv-requests/{slug}/reject", "adminRejectSpvRequest", "Mock admin",
              "Reject a pending SPV request", reject,
              {200: Answer("Rejected", SpvRequestResponse), **errors(400, 404, 409)}, params=_SLUG,
              body=Body("application/json", RejectBody), plane="control", transaction=True),
    Operation("POST", "/_mock/admin/subscriptions/{subscriptionSlug}/complete", "adminCompleteSubscription",
              "Mock admin", "Mark a funded subscription completed", complete,
              {200: Answer("Completed", SubscriptionResult), **errors(400, 404, 409)},
              params=(Param("subscriptionSlug", "path", {"type": "string"}, True),),
              body=Body("application/json", CompleteBody), plane="control", transaction=True),
    Operation("GET", "/_mock/admin/policy", "getAdminPolicy", "Mock admin", "The simulated admin's policy",
              get_policy, {200: Answer("The policy", policy.AdminPolicy)}, plane="control"),
    Operation("PUT", "/_mock/admin/policy", "setAdminPolicy", "Mock admin",
              "Set how and when the simulated admin reviews requests and completes funded subscriptions", put_policy,
              {200: Answer("The policy", policy.AdminPolicy), **errors(400)},
              body=Body("application/json", policy.AdminPolicy), plane="control",
              description="Applies to SPV requests created and funding receipts uploaded from now on."),
]
