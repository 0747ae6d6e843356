"""Routes of the SPV Requests tag: create (idempotent), list, get, cancel."""

from __future__ import annotations

from starlette.responses import Response

from mock_server.domain import spv_requests
from mock_server.errors import InvalidRequest
from mock_server.http.bodies import int_query, json_response, read_json
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation, Param
from mock_server.http.unknown_fields import ignored_fields
from mock_server.http.writes import Effect
from mock_server.models import AggregationResponse, SpvRequestCreate, SpvRequestResponse, SpvRequestStatus, dump
from mock_server.validation import parse_model

_STATUSES = [s.value for s in SpvRequestStatus]
MAX_PAGE = 10**9  # keeps the SQL offset in range; declared as the parameter's maximum
_SLUG = Param("slug", "path", {"type": "string"}, True, "SPV request slug, e.g. svr_a1b2c3")


async def create(call: Call) -> Effect:
    data = await read_json(call.request, call.rt.settings.json_body_limit_bytes)

    def effect() -> tuple[int, object]:
        return 201, dump(spv_requests.create(call.rt, call.partner, parse_model(SpvRequestCreate, data,
                                                                               ignored=ignored_fields(call))))

    return Effect(effect, data)


async def list_requests(call: Call) -> Response:
    query = call.request.query_params
    per_page = int_query(query.get("perPage"), "perPage", 10, 1, 100)
    page = int_query(query.get("page"), "page", 1, 1, MAX_PAGE)
    status = query.get("status")
    if status is not None and status not in _STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}")
    result = spv_requests.list_page(call.rt, call.partner.client_id, page, per_page, status)
    return json_response(dump(result))


async def get_request(call: Call) -> Response:
    return json_response(dump(spv_requests.get(call.rt, call.partner, call.request.path_params["slug"])))


async def cancel(call: Call) -> Effect:
    slug = call.request.path_params["slug"]
    return Effect(lambda: (200, dump(spv_requests.cancel(call.rt, call.partner.client_id, slug))))


OPERATIONS = [
    Operation(
        "GET", "/v1/spv-requests", "listSpvRequests", "SPV Requests", "List SPV requests", list_requests,
        {200: Answer("A page of the caller's SPV requests, newest first", AggregationResponse), **errors(400, 401)},
        secured=True,
        params=(
            Param("perPage", "query", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}),
            Param("page", "query", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
            Param("status", "query", {"type": "string", "enum": _STATUSES}),
        ),
    ),
    Operation(
        "POST", "/v1/spv-requests", "createSpvRequest", "SPV Requests", "Create an SPV request", create,
        {201: Answer("Created, pending review", SpvRequestResponse), **errors(400, 401, 403, 404, 409)},
        secured=True, provisioned=True, idempotency="required", transaction=True,
        body=Body("application/json", SpvRequestCreate),
        links={201: {
            "GetSpvRequest": {"operationId": "getSpvRequest", "parameters": {"slug": "$response.body#/spvRequestSlug"}},
            "CancelSpvRequest": {"operationId": "cancelSpvRequest",
                                 "parameters": {"slug": "$response.body#/spvRequestSlug"}},
        }},
    ),
    Operation(
        "GET", "/v1/spv-requests/{slug}", "getSpvRequest", "SPV Requests", "Get an SPV request", get_request,
        {200: Answer("The SPV request", SpvRequestResponse), **errors(401, 404)}, secured=True, params=(_SLUG,),
    ),
    Operation(
        "DELETE", "/v1/spv-requests/{slug}", "cancelSpvRequest", "SPV Requests", "Cancel an SPV request", cancel,
        {200: Answer("Cancelled", SpvRequestResponse), **errors(401, 404, 409)}, secured=True, params=(_SLUG,),
        transaction=True,
    ),
]
