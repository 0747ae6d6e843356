"""Operations: one declaration per published operation, from which both the routes and the served OpenAPI come.

Routes are grouped by path (one Starlette route per path, dispatching by method), so a wrong method gets a 405
whose ``Allow`` lists every method of that path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mock_server.domain import auth
from mock_server.domain.partners import Partner
from mock_server.errors import MethodNotAllowed
from mock_server.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    location: str  # path | query | header
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Body:
    media_type: str  # application/json | application/x-www-form-urlencoded | multipart/form-data
    model: type[BaseModel]
    encoding: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"
    headers: dict[str, Any] | None = None


@dataclass(slots=True)
class Call:
    """What a handler gets: the request, the runtime and, on secured operations, the authenticated partner."""

    request: Request
    rt: Runtime
    _partner: Partner | None = None

    @property
    def partner(self) -> Partner:
        assert self._partner is not None, "handler of an unsecured operation asked for the partner"
        return self._partner


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    handler: Handler
    answers: dict[int, Answer]
    secured: bool = False
    params: tuple[Param, ...] = ()
    body: Body | None = None
    description: str = ""
    links: dict[int, dict[str, Any]] = field(default_factory=dict)
    plane: str = "partner"  # partner (served at /openapi.json) | control (/_mock/openapi.json) | hidden


def build_routes(operations: Sequence[Operation]) -> list[Route]:
    by_path: dict[str, dict[str, Operation]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = op
    return [_route(path, ops) for path, ops in by_path.items()]


def _route(path: str, ops: dict[str, Operation]) -> Route:
    # An ASGI endpoint (not a function) with methods=None receives every method, so any wrong one, even an
    # unusual one, gets the envelope 405 below with the Allow of this path.
    return Route(path, _PathEndpoint(ops), methods=None)


class _PathEndpoint:
    def __init__(self, ops: dict[str, Operation]) -> None:
        self.ops = ops
        self.allowed = sorted(ops) + (["HEAD"] if "GET" in ops else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        op = self.ops.get(method)
        if op is None:
            raise MethodNotAllowed(request.method, request.url.path, self.allowed)
        state = request.scope.setdefault("state", {})
        state["operation_id"] = op.operation_id
        rt: Runtime = request.app.state.rt
        call = Call(request, rt)
        if op.secured:
            call._partner = auth.authenticate(rt.store, rt.clock, request.headers.get("authorization"))
            state["client_id"] = call._partner.client_id
        return await op.handler(call)
