"""The request journal's recorder: a pure ASGI middleware writing every partner API call into ``domain.journal``
(the table's owner) once it is answered; ``control/journal.py`` is the route that lists them.

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

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.clock import format_instant
from mock_server.domain import journal
from mock_server.http import unknown_fields
from mock_server.runtime import Runtime
from mock_server.store import dumps

log = logging.getLogger("zest_mock.journal")
PREFIX = "/v1/"
CLIENT_CLOSED = 499


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
