"""The request journal's face: a pure ASGI middleware recording every partner API call (into ``domain.journal``,
the table's owner), and the route that lists them.

Only paths under ``/v1/`` are recorded (not ``/_mock``, not system paths). A row is written after the response
went out: simulated time at the start, method, path, operationId, clientId and body hash (which the route leaves in
``scope["state"]``), Idempotency-Key, status (499 when the client went away first), wall duration and the unknown
request fields the route ignored; for a bulk investor create also how each row was answered (the route leaves them
in ``scope["state"]["rows"]``). Recording never breaks a request: its own failures are logged and swallowed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.clock import format_instant
from mock_server.domain import journal
from mock_server.http import unknown_fields
from mock_server.http.bodies import int_query, json_response
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Call, Operation, Param
from mock_server.runtime import Runtime
from mock_server.store import Row, dumps, loads

log = logging.getLogger("zest_mock.journal")
PREFIX = "/v1/"
CLIENT_CLOSED = 499
DEFAULT_LIMIT, MAX_LIMIT = 100, journal.KEEP


class JournalMiddleware:
    """Records ``/v1/`` calls into the ``journal`` table once they are answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = _runtime(scope) if scope["type"] == "http" and scope["path"].startswith(PREFIX) else None
        entry = _Entry.start(scope, rt) if rt is not None else None
        if entry is None:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, entry.receive(receive), entry.send(send))
        except BaseException as exc:
            entry.failed(exc)
            raise
        finally:
            entry.record()


class _Entry:
    """One call in progress: what the journal row needs, gathered as the call runs."""

    def __init__(self, scope: Scope, rt: Runtime) -> None:
        self.scope, self.rt = scope, rt
        self.state: dict[str, Any] = scope.setdefault("state", {})  # shared with the route even if scope is copied
        self.at = format_instant(rt.clock.now())
        self.wall_at = time.time()  # backoff is judged on the partner's wall clock, not simulated time
        self.started = time.perf_counter()
        self.status: int | None = None
        self.complete = False
        self.client_left = False

    @classmethod
    def start(cls, scope: Scope, rt: Runtime) -> _Entry | None:
        try:
            return cls(scope, rt)
        except Exception:  # the journal must never break a request
            log.exception("could not start a journal entry")
            return None

    def receive(self, receive: Receive) -> Receive:
        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not self.complete:
                self.client_left = True  # servers drop whatever is sent after this, so the answer never arrives
            return message
        return watched

    def send(self, send: Send) -> Send:
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = int(message["status"])
            try:
                await send(message)
            except OSError:
                self.client_left = True
                raise
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.complete = True
        return watched

    def failed(self, exc: BaseException) -> None:
        """The app raised: the outer error middleware answers 500; a cancelled call lost its client."""
        if not isinstance(exc, Exception):
            self.client_left = self.client_left or not self.complete
        elif not self.complete:
            self.status = 500

    def record(self) -> None:
        rt = self.rt
        try:
            status = CLIENT_CLOSED if self.client_left else self.status or CLIENT_CLOSED
            journal.record(rt.store, journal.Call(
                self.at, self.wall_at, self.scope["method"], self.scope["path"], self.state.get("operation_id"),
                self.state.get("client_id"), _header(self.scope, b"idempotency-key"), self.state.get("body_hash"),
                status, round((time.perf_counter() - self.started) * 1000, 3), _text(self.state.get("fault")),
                _text(self.state.get("resource")), _text(self.state.get(unknown_fields.STATE_KEY) or None),
            ), self.state.get("rows") or ())
        except Exception:  # the journal must never break a request
            log.exception("could not journal %s %s", self.scope.get("method"), self.scope.get("path"))


def _runtime(scope: Scope) -> Runtime | None:
    app = scope.get("app")
    rt = getattr(getattr(app, "state", None), "rt", None)
    return rt if isinstance(rt, Runtime) else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")[:255]
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return dumps(value)


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
