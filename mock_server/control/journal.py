"""The request journal's route: the partner API calls the mock answered, as ``http/journaling.py`` recorded them
(into ``domain.journal``, the table's owner)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import Response

from mock_server.domain import journal
from mock_server.http.bodies import int_query, json_response
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Call, Operation, Param
from mock_server.store import Row, loads

DEFAULT_LIMIT, MAX_LIMIT = 100, journal.KEEP


class JournalRow(BaseModel):
    """How one row of a bulk investor create was answered."""

    index: int
    partnerInvestorId: str
    rowHash: str = Field(description="SHA-256 of the row as sent (key-sorted compact JSON)")
    status: str = Field(description="created | already_exists | failed")
    zestPersonId: str | None
    errorCode: str | None
    retryable: bool | None
    field: str | None
    fault: str | None = Field(description="The fault rule that failed this row (`fail_rows#<id>`), if one did")


class JournalEntry(BaseModel):
    seq: int
    at: str
    method: str
    path: str
    operationId: str | None
    clientId: str | None
    idempotencyKey: str | None
    bodyHash: str | None
    status: int
    durationMs: float
    fault: str | None
    resource: str | None
    rows: list[JournalRow] = Field(description="bulkCreateInvestors: how each row was answered (even when the "
                                               "answer itself was lost); empty for other calls")
    ignoredFields: list[str] | None = Field(
        default=None, description="Unknown request fields the mock ignored (named in Zest-Mock-Warning)")


class JournalPage(BaseModel):
    items: list[JournalEntry]


async def list_requests(call: Call) -> Response:
    query = call.request.query_params
    limit = int_query(query.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    rows = journal.latest(call.rt.store, limit, query.get("clientId"), query.get("operationId"))
    outcomes = journal.rows_of(call.rt.store, rows)
    return json_response({"items": [{**_wire(r), "rows": [_wire_row(o) for o in outcomes.get(r["seq"], ())]}
                                    for r in rows]})


def _wire_row(r: Row) -> dict[str, Any]:
    return {"index": r["idx"], "partnerInvestorId": r["partner_investor_id"], "rowHash": r["row_hash"],
            "status": r["status"], "zestPersonId": r["person_id"], "errorCode": r["error_code"],
            "retryable": None if r["retryable"] is None else bool(r["retryable"]), "field": r["field"],
            "fault": r["fault"]}


def _wire(r: Row) -> dict[str, Any]:
    return {"seq": r["seq"], "at": r["at"], "wallAt": r["wall_at"], "method": r["method"], "path": r["path"],
            "operationId": r["operation_id"], "clientId": r["client_id"], "idempotencyKey": r["idempotency_key"],
            "bodyHash": r["body_hash"], "status": r["status"], "durationMs": r["duration_ms"], "fault": r["fault"],
            "resource": r["resource"], "ignoredFields": loads(r["ignored_fields"])}


OPERATIONS = [
    Operation("GET", "/_mock/requests", "listRequests", "Mock journal",
              "Partner API calls the mock answered, oldest first", list_requests,
              {200: Answer("The latest matching calls", JournalPage), **errors(400)},
              params=(Param("clientId", "query", {"type": "string"}),
                      Param("operationId", "query", {"type": "string"}),
                      Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                               "default": DEFAULT_LIMIT},
                            description="How many of the latest matching calls to return")),
              plane="control",
              description="Every call under /v1/: simulated time at its start, method, path, operationId, client, "
                          "Idempotency-Key, body hash, status (499: the client went away first), wall duration, the "
                          "unknown fields ignored and, for bulkCreateInvestors, how each row was answered."),
]
