"""Control routes of failure injection: fault rules on the partner API and webhook chaos per partner."""

from __future__ import annotations

from starlette.responses import Response

from mock_server.domain import faults, partners
from mock_server.errors import InvalidRequest
from mock_server.http.bodies import json_response, read_json
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation, Param
from mock_server.validation import parse_model
from mock_server.webhooks import chaos


async def add_rule(call: Call) -> Response:
    rule = parse_model(faults.FaultRule, await read_json(call.request, 16 * 1024))
    return json_response(faults.add(call.rt, rule), 201)


async def list_rules(call: Call) -> Response:
    return json_response({"items": faults.list_rules(call.rt)})


async def remove_rule(call: Call) -> Response:
    raw = call.request.path_params["faultId"]
    if not raw.isdigit():
        raise InvalidRequest("faultId must be an integer")
    return json_response(faults.remove(call.rt, int(raw)))


async def clear_rules(call: Call) -> Response:
    return json_response({"removed": faults.clear(call.rt)})


async def set_chaos(call: Call) -> Response:
    client_id = call.request.path_params["clientId"]
    partners.get(call.rt.store, client_id)
    settings = parse_model(chaos.WebhookChaos, await read_json(call.request, 8192))
    return json_response(chaos.store_chaos(call.rt.store, client_id, settings).model_dump())


async def get_chaos(call: Call) -> Response:
    client_id = call.request.path_params["clientId"]
    partners.get(call.rt.store, client_id)
    return json_response(chaos.load_chaos(call.rt.store, client_id).model_dump())


_CLIENT = (Param("clientId", "path", {"type": "string"}, True),)
OPERATIONS = [
    Operation("POST", "/_mock/faults", "addFault", "Mock faults", "Add a fault rule for the partner API", add_rule,
              {201: Answer("The rule"), **errors(400)}, body=Body("application/json", faults.FaultRule),
              plane="control"),
    Operation("GET", "/_mock/faults", "listFaults", "Mock faults", "Fault rules, with how often each fired",
              list_rules, {200: Answer("Rules")}, plane="control"),
    Operation("DELETE", "/_mock/faults", "clearFaults", "Mock faults", "Remove every fault rule", clear_rules,
              {200: Answer("How many were removed")}, plane="control"),
    Operation("DELETE", "/_mock/faults/{faultId}", "removeFault", "Mock faults", "Remove one fault rule",
              remove_rule, {200: Answer("The removed rule"), **errors(400, 404)},
              params=(Param("faultId", "path", {"type": "integer"}, True),), plane="control"),
    Operation("PUT", "/_mock/webhooks/chaos/{clientId}", "setWebhookChaos", "Mock faults",
              "Duplicate, reorder, fail or tamper with a partner's webhook deliveries", set_chaos,
              {200: Answer("The chaos settings", chaos.WebhookChaos), **errors(400, 404)},
              params=_CLIENT, body=Body("application/json", chaos.WebhookChaos), plane="control"),
    Operation("GET", "/_mock/webhooks/chaos/{clientId}", "getWebhookChaos", "Mock faults",
              "A partner's webhook chaos settings", get_chaos,
              {200: Answer("The chaos settings", chaos.WebhookChaos), **errors(404)}, params=_CLIENT,
              plane="control"),
]
