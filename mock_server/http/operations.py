"""Operations: one declaration per published operation, from which the routes, the served OpenAPI and the
request pipeline all come.

An ``Operation`` is the whole contract of an endpoint: besides its path, parameters, body and answers it says
whether the caller must be authenticated (``secured``) and provisioned (``provisioned``: 403 otherwise), its
Idempotency-Key mode (``idempotency``: required, optional or none; the header parameter is documented from it)
and whether its effect runs in one store transaction (``transaction``). ``_PathEndpoint.handle`` applies these in
one place and in this order: 405, 401, 403, then the handler (which reads and parses the request: 400/413/415 of
syntax), then the Idempotency-Key (400, replay or 409), then the effect (validation and action), committed with
its stored answer in one transaction. A transactional handler returns the ``Effect`` to run; any other returns
its ``Response``.

Routes are grouped by path (one Starlette route per path, dispatching by method), so a wrong method gets a 405
whose ``Allow`` lists every method of that path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mock_server.domain import auth
from mock_server.domain.partners import Partner
from mock_server.errors import MethodNotAllowed
from mock_server.http.writes import Effect, commit
from mock_server.runtime import Runtime

if TYPE_CHECKING:
    from pydantic import BaseModel

Idempotency = Literal["required", "optional", "none"]


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


Handler = Callable[[Call], Awaitable[Response | Effect]]


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
    provisioned: bool = False  # the partner must be provisioned for the partner API, else 403
    idempotency: Idempotency = "none"  # the Idempotency-Key header: required, optional, or not taken
    transaction: bool = False  # the handler returns an Effect, run (and its answer stored) in one transaction

    def __post_init__(self) -> None:
        if self.provisioned and not (self.secured and 403 in self.answers):
            raise ValueError(f"{self.operation_id}: a provisioned operation is secured and declares its 403")
        if self.idempotency != "none" and not (self.secured and self.transaction and 409 in self.answers):
            raise ValueError(f"{self.operation_id}: an idempotent operation is secured, transactional and "
                             "declares its 409")

    @property
    def parameters(self) -> tuple[Param, ...]:
        """The declared parameters, then the Idempotency-Key header of an operation that takes one."""
        if self.idempotency == "none":
            return self.params
        return (*self.params, Param("Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 255},
                                    self.idempotency == "required",
                                    "One key per logical request, reused on every retry (a v4 UUID is a good "
                                    "choice)."))


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
        """405, 401, 403, the handler, then (for a transactional operation) Idempotency-Key and the effect."""
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
        if op.provisioned:
            auth.require_provisioned(call.partner)
        outcome = await op.handler(call)
        if not op.transaction:
            assert isinstance(outcome, Response), f"{op.operation_id}: a handler without a transaction answers"
            return outcome
        assert isinstance(outcome, Effect), f"{op.operation_id}: a transactional handler returns its Effect"
        client_id = call.partner.client_id if op.idempotency != "none" else None
        return commit(rt, request, outcome, op.idempotency, client_id)
