"""Routes of the Investors and Subscriptions tags: bulk investor onboarding and bulk subscription creation."""

from __future__ import annotations

from mock_server.domain import investors, subscriptions
from mock_server.http.bodies import read_json
from mock_server.http.common import errors
from mock_server.http.fault_injection import row_fault_plan
from mock_server.http.operations import Answer, Body, Call, Operation, Param
from mock_server.http.unknown_fields import ignored_fields
from mock_server.http.writes import Effect
from mock_server.models import (
    InvestorBulkCreate,
    InvestorBulkResponse,
    SubscriptionBulkCreate,
    SubscriptionBulkResponse,
    dump,
)
from mock_server.validation import parse_model


async def bulk_investors(call: Call) -> Effect:
    data = await read_json(call.request, call.rt.settings.json_body_limit_bytes)

    state = call.request.scope.setdefault("state", {})

    def effect() -> tuple[int, object]:
        ignored = ignored_fields(call)
        rows = parse_model(InvestorBulkCreate, data, ignored=ignored).investors
        created = investors.bulk_create(call.rt, call.partner, rows, row_fault_plan(call.request.scope), ignored)
        state["rows"] = created.outcomes  # for the journal: how each row was answered
        return 200, dump(created.response)

    def replayed(body: bytes) -> None:
        state["rows"] = investors.replayed(data["investors"], body)

    return Effect(effect, data, on_replay=replayed)


async def bulk_subscriptions(call: Call) -> Effect:
    data = await read_json(call.request, call.rt.settings.json_body_limit_bytes)
    spv_slug = call.request.path_params["spv_slug"]

    def effect() -> tuple[int, object]:
        body = parse_model(SubscriptionBulkCreate, data, ignored=ignored_fields(call))
        return 201, dump(subscriptions.bulk_create(call.rt, call.partner, spv_slug, body))

    return Effect(effect, data)


OPERATIONS = [
    Operation(
        "POST", "/v1/investors", "bulkCreateInvestors", "Investors", "Bulk create investors", bulk_investors,
        {200: Answer("Per-row results; a failing row never fails the batch", InvestorBulkResponse),
         **errors(400, 401, 403, 409)},
        secured=True, provisioned=True, idempotency="optional", transaction=True,
        body=Body("application/json", InvestorBulkCreate),
        # The SPV slug cannot come from this response: the stateful run supplies an approved SPV's vehicle slug.
        links={200: {"CreateSubscriptions": {
            "operationId": "createSubscriptions",
            "requestBody": {"subscriptions": [{"zestPersonId": "$response.body#/results/0/zestPersonId"}]},
        }}},
    ),
    Operation(
        "POST", "/v1/spvs/{spv_slug}/subscriptions", "createSubscriptions", "Subscriptions",
        "Create subscriptions for one SPV", bulk_subscriptions,
        {201: Answer("Created, all rows pending", SubscriptionBulkResponse), **errors(400, 401, 403, 404, 409)},
        secured=True, provisioned=True, idempotency="optional", transaction=True,
        params=(Param("spv_slug", "path", {"type": "string"}, True, "The vehicle slug of an approved SPV request"),),
        body=Body("application/json", SubscriptionBulkCreate),
        links={201: {"UploadSubscriptionForm": {
            "operationId": "uploadSubscriptionForm",
            "parameters": {"spv_slug": "$response.body#/results/0/spvSlug",
                           "person_id": "$response.body#/results/0/personId"},
        }}},
    ),
]
