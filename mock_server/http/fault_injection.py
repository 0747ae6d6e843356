"""Fault injection on the partner API: an ASGI middleware applying the first fault rule that fires.

Actions: ``error`` answers the envelope without running the handler; ``error_after_commit`` and
``drop_after_commit`` run the handler (the write and its events are committed) and then lose the answer: a 5xx,
or a connection closed without any response; ``latency`` delays the request; ``timeout`` holds it past the
client's timeout and then drops it without running the handler; ``drop`` closes it without running the handler;
``fail_rows`` runs the handler with the rule's ``RowFaultPlan`` in ``scope["state"]`` (read back with
``row_fault_plan``), so the bulk investor create fails the rows it picks. The fired rule is written to
``scope["state"]["fault"]`` for the journal.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.errors import ZestError, error_response
from mock_server.http.operations import Operation
from mock_server.runtime import Runtime

if TYPE_CHECKING:
    from mock_server.domain import faults
    from mock_server.domain.row_faults import RowFaultPlan

# A header name no HTTP/1.1 server will write: the server fails before sending a byte and closes the connection.
_UNSENDABLE = [(b"zest mock dropped this connection", b"1")]
_ROW_PLAN = "row_fault_plan"


def row_fault_plan(scope: Scope) -> RowFaultPlan | None:
    """The row faults a fired ``fail_rows`` rule asks of this request, if one fired."""
    from mock_server.domain.row_faults import RowFaultPlan

    plan = scope.get("state", {}).get(_ROW_PLAN)
    return plan if isinstance(plan, RowFaultPlan) else None


class DroppedConnection(Exception):
    """Raised on purpose to make the server close the connection without a response."""


class QuietDrops(logging.Filter):
    """Keeps deliberate drops out of the server's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


class FaultInjectionMiddleware:
    def __init__(self, app: ASGIApp, operations: Callable[[], Sequence[Operation]]) -> None:
        """``operations`` gives the partner API's operations; it is called with the first ``/v1/`` request."""
        self.app = app
        self.operations = operations
        self._routes: list[tuple[str, re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        rt: Runtime = scope["app"].state.rt
        fired = self._pick(rt, scope)
        if fired is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["fault"] = fired.label
        await self._apply(rt, fired, scope, receive, send)

    def _pick(self, rt: Runtime, scope: Scope) -> faults.Fired | None:
        from mock_server.domain import auth, faults  # loaded with the partner API, not at start

        if not faults.any_rules(rt):
            return None
        if self._routes is None:
            self._routes = [(op.method, compile_path(op.path)[0], op.operation_id) for op in self.operations()
                            if op.path.startswith("/v1/")]
        method = scope["method"]
        operation_id = next((op for m, regex, op in self._routes if m == method and regex.match(scope["path"])),
                            None)
        headers = dict(scope["headers"])
        client_id = auth.client_of(rt.store, rt.clock, _text(headers.get(b"authorization")))
        state = scope.setdefault("state", {})
        state.setdefault("operation_id", operation_id)
        state.setdefault("client_id", client_id)
        return faults.pick(rt, operation_id, method, scope["path"], client_id)

    async def _apply(self, rt: Runtime, fired: faults.Fired, scope: Scope, receive: Receive, send: Send) -> None:
        rule = fired.rule
        if fired.latency_ms:
            await asyncio.sleep(fired.latency_ms / 1000)
        if rule.action == "latency":
            await self.app(scope, receive, send)
        elif rule.action == "fail_rows":
            scope["state"][_ROW_PLAN] = fired.row_plan()
            await self.app(scope, receive, send)
        elif rule.action == "error":
            await _answer_error(rt, fired, scope, receive, send)
        elif rule.action in ("error_after_commit", "drop_after_commit"):
            await self.app(scope, receive, _swallow)
            if rule.action == "drop_after_commit":
                await _drop(send)
            await _answer_error(rt, fired, scope, receive, send)
        elif rule.action == "timeout":
            await _hold(receive, rule.holdSeconds)
            await _drop(send)
        else:
            await _drain(receive)
            await _drop(send)


async def _answer_error(rt: Runtime, fired: faults.Fired, scope: Scope, receive: Receive, send: Send) -> None:
    rule = fired.rule
    headers = {"Retry-After": str(rule.retryAfter)} if rule.retryAfter is not None else None
    detail = rule.detail or f"injected fault: {rule.action} (rule {fired.rule_id})"
    error = ZestError(detail, status=rule.status, code=rule.error_code(), headers=headers)
    await error_response(error, rt.ids.fault_uuid4)(scope, receive, send)


async def _swallow(message: Message) -> None:
    """The handler's answer, lost on the way back."""


async def _drop(send: Send) -> None:
    try:
        await send({"type": "http.response.start", "status": 500, "headers": _UNSENDABLE})
    except Exception:  # the server refuses to write it: exactly the point, nothing went out
        pass
    raise DroppedConnection("connection dropped by an injected fault")


async def _drain(receive: Receive, limit: int = 1024 * 1024) -> None:
    """Read a small request body first, so the connection closes cleanly rather than with a reset."""
    read, more = 0, True
    while more and read <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        more = message.get("more_body", False)


async def _hold(receive: Receive, seconds: float) -> None:
    """Hold the request for ``seconds`` (wall time), or until the client gives up and disconnects."""
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), timeout=seconds)
    except TimeoutError:
        pass


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
