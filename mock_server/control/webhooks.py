"""Control routes of webhooks: the endpoint per partner, stored events, every attempt, dead letters, redelivery."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mock_server.clock import format_instant
from mock_server.domain import partners
from mock_server.domain.partners import DEV_CLIENT_ID
from mock_server.errors import NotFound
from mock_server.http.bodies import json_response, read_json
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation, Param
from mock_server.http.writes import Effect
from mock_server.store import Row, loads
from mock_server.validation import parse_model
from mock_server.webhooks import events, outbox


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    clientId: str = DEV_CLIENT_ID
    url: str | None = Field(pattern=r"^https?://\S+$", max_length=2000)
    secret: str | None = Field(default=None, pattern=r"^whsec_[A-Za-z0-9]{8,128}$")


class Listing(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[dict[str, Any]]


async def set_endpoint(call: Call) -> Effect:
    body = parse_model(EndpointBody, await read_json(call.request, 8192))
    rt = call.rt

    def run() -> tuple[int, object]:
        partner = partners.set_webhook(rt.store, body.clientId, body.url, body.secret)
        resumed = rt.dispatcher.resume_parked(partner.client_id) if partner.webhook_url else 0
        return 200, {"clientId": partner.client_id, "url": partner.webhook_url, "secret": partner.webhook_secret,
                     "resumedDeliveries": resumed}

    return Effect(run)


async def list_events(call: Call) -> Response:
    query = call.request.query_params
    rows = outbox.events(call.rt.store, query.get("clientId"), query.get("eventType"))
    return json_response({"items": [{"clientId": r["client_id"], **loads(r["body"])} for r in rows]})


async def list_attempts(call: Call) -> Response:
    query = call.request.query_params
    rows = outbox.attempts(call.rt.store, query.get("clientId"), query.get("eventId"), query.get("deliveryId"))
    return json_response({"items": [_attempt(r) for r in rows]})


async def dead_letter(call: Call) -> Response:
    rows = outbox.with_status(call.rt.store, "dead", call.request.query_params.get("clientId"))
    return json_response({"items": [_delivery(r) for r in rows]})


async def redeliver(call: Call) -> Effect:
    rt, event_id = call.rt, call.request.path_params["eventId"]

    def run() -> tuple[int, object]:
        event = outbox.event(rt.store, event_id)
        if event is None:
            raise NotFound(f"event {event_id!r} does not exist")
        delivery_id = events.queue_delivery(rt.store, rt.ids, event_id, event["client_id"],
                                            format_instant(rt.clock.now()), kind="redeliver")
        row = outbox.delivery(rt.store, delivery_id)
        assert row is not None
        return 202, _delivery(row)

    return Effect(run)


def _attempt(r: Row) -> dict[str, Any]:
    return {"deliveryId": r["delivery_id"], "eventId": r["event_id"], "clientId": r["client_id"],
            "attempt": r["attempt"], "at": r["at"], "url": r["url"], "statusCode": r["status_code"],
            "error": r["error"], "durationMs": r["duration_ms"], "outcome": r["outcome"],
            "nextAttemptAt": r["next_attempt_at"], "fault": r["fault"]}


def _delivery(r: Row) -> dict[str, Any]:
    return {"deliveryId": r["delivery_id"], "eventId": r["event_id"], "clientId": r["client_id"],
            "status": r["status"], "attempts": r["attempts"], "nextAttemptAt": r["next_attempt_at"],
            "createdAt": r["created_at"], "kind": r["kind"]}


_CLIENT = Param("clientId", "query", {"type": "string"})
OPERATIONS = [
    Operation("PUT", "/_mock/webhooks/endpoint", "setWebhookEndpoint", "Mock webhooks",
              "Set a partner's webhook URL and secret; deliveries kept while it had none go out now", set_endpoint,
              {200: Answer("The endpoint"), **errors(400, 404)}, body=Body("application/json", EndpointBody),
              plane="control", transaction=True),
    Operation("GET", "/_mock/webhooks/events", "listWebhookEvents", "Mock webhooks", "Stored events, oldest first",
              list_events, {200: Answer("Events", Listing)},
              params=(_CLIENT, Param("eventType", "query", {"type": "string"})), plane="control"),
    Operation("GET", "/_mock/webhooks/deliveries", "listWebhookAttempts", "Mock webhooks",
              "Every delivery attempt: time, status code or error class, duration, outcome, next attempt",
              list_attempts, {200: Answer("Attempts", Listing)},
              params=(_CLIENT, Param("eventId", "query", {"type": "string"}),
                      Param("deliveryId", "query", {"type": "string"})), plane="control"),
    Operation("GET", "/_mock/webhooks/dead-letter", "listDeadDeliveries", "Mock webhooks",
              "Deliveries whose six attempts all failed", dead_letter, {200: Answer("Dead deliveries", Listing)},
              params=(_CLIENT,), plane="control"),
    Operation("POST", "/_mock/webhooks/events/{eventId}/redeliver", "redeliverWebhookEvent", "Mock webhooks",
              "Start a fresh delivery chain for an event (same eventId and body)", redeliver,
              {202: Answer("The new delivery"), **errors(404)},
              params=(Param("eventId", "path", {"type": "string"}, True),), plane="control", transaction=True),
]
